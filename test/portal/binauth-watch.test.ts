// tier: fast
// The portal's own deauths as the package's BinAuth reports them (portal/binauth-watch.ts): a real inotify watch on a
// directory written the way binauth_sluice.sh writes it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinauthWatch } from '../../src/portal/binauth-watch.ts';
import { until } from '../helpers/until.ts';

const A = '02:00:00:00:0e:01';
const TOKEN = '0a1b2c3d';

/**
 * Runs `fn` with a started watch of a portal's directory (the BinAuth's records in it when `made`) and the MACs it
 * reported; closes the watch and removes the directory after.
 */
async function watching(
  made: boolean,
  fn: (w: { dir: string; tokens: string; watch: BinauthWatch; heard: string[] }) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-binauth-'));
  const tokens = join(dir, 'sluice-tokens');
  if (made) mkdirSync(tokens);
  const watch = new BinauthWatch({ socketPath: () => join(dir, 'ndsctl.sock'), retryMs: 20, settleMs: 100 });
  const heard: string[] = [];
  watch.onDeauth((mac) => heard.push(mac));
  try {
    watch.start();
    await fn({ dir, tokens, watch, heard });
  } finally {
    watch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a deauth empties the record: reported once, with the MAC; an auth writes a token: nothing', async () => {
  await watching(true, async ({ dir, tokens, watch, heard }) => {
    assert.ok(watch.liveSince !== undefined);
    writeFileSync(join(tokens, A), `${A} ${TOKEN}\n`, { mode: 0o644 }); // the auth
    writeFileSync(join(tokens, 'not-a-mac'), '', { mode: 0o644 });
    writeFileSync(join(tokens, A), '', { mode: 0o644 }); // the deauth: `printf '' > file`
    writeFileSync(join(tokens, A), '', { mode: 0o644 }); // more events of the same deauth
    await until(() => heard.length > 0, 5000, 'the deauth reported', 10);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(heard, [A], 'once');
    // An auth empties the record before it writes the token (`printf … > file`): not a deauth.
    writeFileSync(join(tokens, A), '', { mode: 0o644 });
    writeFileSync(join(tokens, A), `${A} ${TOKEN}\n`, { mode: 0o644 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(heard, [A], 'an auth is no deauth');
    writeFileSync(join(tokens, A), '', { mode: 0o644 }); // deauthed again after that auth: a new deauth
    await until(() => heard.length > 1, 5000, 'the second deauth reported', 10);
    assert.equal(heard, [A, A]);
    assert.is(watch.deauths, 2);
  });
});

test('no directory yet (no BinAuth run): not live, and looked for again until it is there', async () => {
  await watching(false, async ({ dir, watch, heard }) => {
    assert.is(watch.liveSince, undefined, 'nothing to watch: stalls are listed for');
    mkdirSync(join(dir, 'sluice-tokens'));
    await until(() => watch.liveSince !== undefined, 5000, 'the directory found', 10);
    writeFileSync(join(dir, 'sluice-tokens', A), '', { mode: 0o644 });
    await until(() => heard.length > 0, 5000, 'the deauth reported', 10);
    assert.is(heard[0], A);
  });
});

test('the directory removed: not live until the BinAuth makes it again, then its deauths are reported', async () => {
  await watching(true, async ({ dir, tokens, watch, heard }) => {
    assert.ok(watch.liveSince !== undefined);
    rmSync(tokens, { recursive: true });
    await until(() => watch.liveSince === undefined, 5000, 'the watch lost with its directory', 10);
    mkdirSync(tokens);
    await until(() => watch.liveSince !== undefined, 5000, 'the new directory watched', 10);
    writeFileSync(join(tokens, A), '', { mode: 0o644 });
    await until(() => heard.length > 0, 5000, 'a deauth in the new directory reported', 10);
    assert.equal(heard, [A]);
  });
});

test('a record others may write is not trusted: no deauth reported from it', async () => {
  await watching(true, async ({ dir, tokens, watch, heard }) => {
    // Made writable by all before it enters the directory (the umask would take the bits from a new file).
    const outside = join(dir, 'record');
    writeFileSync(outside, '');
    chmodSync(outside, 0o666);
    renameSync(outside, join(tokens, A));
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(heard, []);
  });
});

test.run();
