// tier: lab
/**
 * The portal's control socket one connection behind, on the real openNDS (9.10; 10.3.1 with
 * SLUICE_E2E_LAB_PORTAL=opennds10): openNDS accepts one connection per wake-up of its edge-triggered epoll, so when
 * calls arrive together while it is busy one of them is left in the listen queue, and every later connection is
 * accepted one late (portal/accept-nudge.ts). Three `status` calls at once (each costs openNDS a gateway check) leave
 * it so; then a call without nudges is never answered (each arrival lets in the one before it: a caller waits for the
 * next caller), and the same call with the runner's default nudges is answered.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createConnection } from 'node:net';
import { NdsctlRunner } from '../../src/portal/index.ts';
import { rejectsWithCode } from '../helpers/assert.ts';
import { labRun, prerequisites, figure } from './scenario.ts';
import { sleep } from './lab.ts';

const pre = prerequisites();
const lab = labRun('accept-lag', pre);
const { L, scenario: labScenario } = lab;

/** One raw call: resolves with the reply, or null if none came within `ms`. */
function rawCall(path: string, request: string, ms: number): Promise<string | null> {
  return new Promise((resolve) => {
    let out = '';
    const s = createConnection({ path });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(null);
    }, ms);
    s.on('connect', () => s.write(`${request}\r\n\r\n`));
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

labScenario(
  'calls arriving together leave one in the listen queue; nudges get a later call answered',
  null,
  async () => {
    const path = L().portalSocketPath;
    assert.ok((await rawCall(path, 'status', 60_000)) !== null, 'the portal answers one call');
    // Three at once, while the first keeps openNDS busy: at least one is left waiting for a later arrival.
    let unanswered = 0;
    for (let attempt = 0; attempt < 5 && unanswered === 0; attempt++) {
      const replies = await Promise.all([1, 2, 3].map(() => rawCall(path, 'status', 8000)));
      unanswered = replies.filter((r) => r === null).length;
    }
    figure(`accept-lag: ${unanswered} of 3 calls at once left unanswered for 8 s`);
    assert.ok(unanswered > 0, 'calls arriving together left one in the queue');
    const nudged = new NdsctlRunner({ command: ['/nonexistent/ndsctl'], socketPath: () => path, timeoutMs: 60_000 });
    try {
      const bare = new NdsctlRunner({
        command: ['/nonexistent/ndsctl'],
        socketPath: () => path,
        timeoutMs: 10_000,
        nudge: null,
      });
      await rejectsWithCode(bare.run(['json']), 'ERR_NDSCTL_TIMEOUT');
      await bare.destroy();
      await sleep(100);
      const r = await nudged.run(['json']);
      assert.ok(r.stdout.includes('client_list_length') || r.stdout.includes('clients'), 'a listing came back');
      const nudges = nudged.callCounts()['nudges'] ?? 0;
      figure(`accept-lag: the nudged call was answered after ${nudges} nudge(s)`);
      assert.ok(nudges >= 1, 'it took a nudge');
    } finally {
      await nudged.destroy();
    }
  },
);

test.run();
