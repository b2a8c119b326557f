// tier: fast
// The tokens the package's BinAuth keeps beside openNDS's control socket (portal/binauth-tokens.ts): read only from a
// file the portal's BinAuth could have written and nobody else, naming the MAC asked for, with a token of openNDS's
// form; anything else is no token (the gate then goes by the MAC).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BINAUTH_TOKENS_DIR,
  binauthTokenReader,
  parseBinauthRecord,
  trustedRecordFile,
} from '../../src/portal/binauth-tokens.ts';

const A = '02:00:00:00:0e:01';
const B = '02:00:00:00:0e:02';
const C = '02:00:00:00:0e:03';
const dirs: string[] = [];

/** A portal's directory (its socket path: no socket needed to read beside it) with the BinAuth's folder in it. */
function portalDir(): { sock: string; file: (mac: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-binauth-tokens-'));
  dirs.push(dir);
  mkdirSync(join(dir, BINAUTH_TOKENS_DIR));
  return { sock: join(dir, 'ndsctl.sock'), file: (mac) => join(dir, BINAUTH_TOKENS_DIR, mac) };
}

test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('a record names its MAC and a token of openNDS form, or gives nothing', () => {
  assert.is(parseBinauthRecord(`${A} 0a1b2c3d\n`, A), '0a1b2c3d');
  assert.is(parseBinauthRecord(`${A.toUpperCase()} 0a1b2c3d`, A), '0a1b2c3d', "openNDS's MAC in capitals");
  for (const text of [
    '',
    `${A} `,
    `${B} 0a1b2c3d\n`,
    `${A} 0a1b2c3d extra\n`,
    `${A} 0A1B2C3D\n`,
    `${A} 0a1b2c3d4e5f\n`,
    `${A}  0a1b2c3d\n`,
    `${A} 0a1b`,
  ])
    assert.is(parseBinauthRecord(text, A), undefined, JSON.stringify(text));
});

test("a file root or this process's user owns, writable by its owner alone", () => {
  const own = process.getuid?.() ?? 1000;
  assert.ok(trustedRecordFile({ uid: 0, mode: 0o100644 }, own));
  assert.ok(trustedRecordFile({ uid: own, mode: 0o100600 }, own));
  assert.not.ok(trustedRecordFile({ uid: 0, mode: 0o100664 }, own), 'group-writable');
  assert.not.ok(trustedRecordFile({ uid: 0, mode: 0o100646 }, own), 'writable by anyone');
  assert.not.ok(trustedRecordFile({ uid: 4242, mode: 0o100644 }, own === 4242 ? 0 : own), "another user's");
});

test("read beside the socket: the BinAuth's file, and nothing from one it could not have written", async () => {
  const { sock, file } = portalDir();
  const read = binauthTokenReader(() => sock);
  assert.is(await read(A), undefined, 'no file');
  writeFileSync(file(A), `${A} 0a1b2c3d\n`, { mode: 0o644 });
  assert.is(await read(A), '0a1b2c3d');
  chmodSync(file(A), 0o666);
  assert.is(await read(A), undefined, 'writable by anyone');
  chmodSync(file(A), 0o644);
  // A link in the BinAuth's place (to a file that would pass) is not followed.
  writeFileSync(join(sock, '..', 'elsewhere'), `${B} 0a1b2c3d\n`, { mode: 0o644 });
  symlinkSync(join(sock, '..', 'elsewhere'), file(B));
  assert.is(await read(B), undefined, 'a symbolic link');
  writeFileSync(file(C), `${C} 0a1b2c3d\n`.repeat(10), { mode: 0o644 });
  assert.is(await read(C), undefined, 'larger than a record');
  if (process.getuid?.() === 0) {
    chownSync(file(A), 4242, 4242);
    assert.is(await read(A), undefined, "another user's file");
  }
  assert.is(await binauthTokenReader(() => undefined)(A), undefined, 'no control socket: no token');
});

test.run();
