// tier: daemon
/**
 * The real daemon warms its ubus codec once its compilers are let go (the first tick with a live session), before a
 * burst of purchases would make it hot (api/warm-up.ts), and the warm-up is invisible: its sample session is in no
 * journal or snapshot line, no nft command, no event and no listing, and the sale that let the compilers go is the
 * only one there is. Timing is bench/portal-cpu.ts's (`--gate 32`), not this file's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BlobmsgTable } from '../../src/ubus/index.ts';
import { DaemonLab } from './harness.ts';

const BUYER = '02:00:00:00:3e:01';
/** The warm-up's sample session (api/warm-up.ts): it must show up nowhere. */
const SAMPLE_MAC = '02:00:00:00:00:00';
const SAMPLE_ID = '0000000000000000';

/** An nft that appends its argv and stdin to `log` and succeeds. */
function recorder(dir: string, log: string): string {
  const path = join(dir, 'nft.sh');
  writeFileSync(
    path,
    `#!/bin/sh\n{ printf 'nft'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'; cat; printf '\\n'; } ` +
      `>> '${log}'\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

/** Every file under `dir`, as text. */
function filesUnder(dir: string): string {
  if (!existsSync(dir)) return '';
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .map((path) => (statSync(path).isDirectory() ? filesUnder(path) : readFileSync(path, 'latin1')))
    .join('\n');
}

test('after the first sale the daemon warms its codec once, and nothing of it is written, run or sent', async () => {
  const lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true });
  const nftLog = join(lab.dir, 'nft.log');
  lab.options.mainExtra = `\toption nft '${recorder(lab.dir, nftLog)}'`;
  lab.writeConfig();
  lab.portal.addClient(BUYER, '10.0.0.41');
  const events: BlobmsgTable[] = [];
  try {
    await lab.client.listen('sluice.*', (_type, data) => events.push(data));
    await lab.startDaemon();
    assert.not.match(lab.output, /ubus codec warmed up/, 'an idle daemon does not warm up');
    await lab.call('grant', { mac: BUYER, bytes: 1_048_576 });
    await lab.waitFor(() => /ubus codec warmed up/.test(lab.output), 30_000, 'the warm-up once a session is live');
    // A few ticks more: whatever the warm-up might have left behind would be out by then.
    await new Promise((r) => setTimeout(r, 1000));
    assert.is(lab.output.match(/ubus codec warmed up/g)?.length, 1, 'once');
    assert.match(lab.output, /ubus codec warmed up cpu_ms=\d/);

    const state = filesUnder(join(lab.dir, 'state'));
    assert.match(state, new RegExp(BUYER), 'the journal holds the sale');
    assert.not.match(state, new RegExp(`${SAMPLE_MAC}|${SAMPLE_ID}|warm-up`), 'nor anything of the warm-up');
    const nft = existsSync(nftLog) ? readFileSync(nftLog, 'utf8') : '';
    assert.not.match(nft, new RegExp(SAMPLE_MAC), 'no nft line for the sample');
    const told = JSON.stringify(events);
    assert.match(told, new RegExp(BUYER), "the sale's events went out");
    assert.not.match(told, new RegExp(`${SAMPLE_MAC}|${SAMPLE_ID}`), 'no event of the sample');
    const listed = (await lab.call('sessions', {})).sessions as Array<{ mac: string }>;
    assert.equal(
      listed.map((s) => s.mac),
      [BUYER],
      'one session: the sale',
    );
    assert.is((await lab.callStatus('session', { mac: SAMPLE_MAC })).status !== 0, true, 'no session on its MAC');
  } finally {
    await lab.close();
  }
});

test.run();
