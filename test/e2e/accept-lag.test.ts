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
import { labRun, prerequisites, figure } from './scenario.ts';
import { sleep } from './lab.ts';

const pre = prerequisites();
const lab = labRun('accept-lag', pre);
const { L, scenario: labScenario } = lab;

type RawReply = { kind: 'answered'; text: string } | { kind: 'silent' } | { kind: 'refused' };

/** One raw call: its reply, `silent` if none came within `ms`, `refused` if the socket would not connect. */
function rawCall(path: string, request: string, ms: number): Promise<RawReply> {
  return new Promise((resolve) => {
    let out = '';
    const s = createConnection({ path });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ kind: 'silent' });
    }, ms);
    s.on('connect', () => s.write(`${request}\r\n\r\n`));
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => {
      clearTimeout(timer);
      resolve({ kind: 'answered', text: out });
    });
    s.on('error', () => {
      clearTimeout(timer);
      resolve({ kind: 'refused' });
    });
  });
}

interface Round {
  /**
   * of three `status` calls at once, how many got no reply within 8 s: the first of up to 20 tries that left any (a
   * try that jams nothing takes well under a second)
   */
  unanswered: number;
  /** a call refused: the portal was down at some point of the round */
  refused: boolean;
  bareError: unknown;
  nudgedListing: string | null;
  nudges: number;
}

/** Jams the portal's accept queue, then makes one call without nudges and one with the runner's default nudges. */
async function round(path: string, first: boolean): Promise<Round> {
  // A `status` just before the three is what leaves openNDS busy enough (a listing before them seldom does).
  if (!first) await rawCall(path, 'status', 60_000);
  let unanswered = 0;
  let refused = false;
  for (let attempt = 0; attempt < 20 && unanswered === 0 && !refused; attempt++) {
    const replies = await Promise.all([1, 2, 3].map(() => rawCall(path, 'status', 8000)));
    unanswered = replies.filter((r) => r.kind === 'silent').length;
    refused = replies.some((r) => r.kind === 'refused');
  }
  const nudged = new NdsctlRunner({ command: ['/nonexistent/ndsctl'], socketPath: () => path, timeoutMs: 60_000 });
  const bare = new NdsctlRunner({
    command: ['/nonexistent/ndsctl'],
    socketPath: () => path,
    timeoutMs: 10_000,
    nudge: null,
  });
  try {
    const bareError = await bare.run(['json']).then(
      () => null,
      (e: unknown) => e,
    );
    await bare.destroy();
    await sleep(100);
    const listing = await nudged.run(['json']).then(
      (r) => r.stdout,
      () => null,
    );
    return { unanswered, refused, bareError, nudgedListing: listing, nudges: nudged.callCounts()['nudges'] ?? 0 };
  } finally {
    await bare.destroy();
    await nudged.destroy();
  }
}

/** Until the portal answers a listing again (after its supervisor started it anew). */
async function portalAnswering(path: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const r = await rawCall(path, 'json', 5000);
    if (r.kind === 'answered' && r.text.length > 0) return;
    await sleep(1000);
  }
  assert.unreachable('the portal did not come back within a minute of exiting');
}

labScenario(
  'calls arriving together leave one in the listen queue; nudges get a later call answered',
  null,
  async () => {
    const path = L().portalSocketPath;
    assert.equal((await rawCall(path, 'status', 60_000)).kind, 'answered', 'the portal answers one call');
    // openNDS 9.10 exits when its main loop's gateway check runs beside a command of its ndsctl thread, and three
    // `status` calls at once invite it (docs/captive-portal.md "Portal restarts"): a round the portal died in says
    // nothing about its accept queue, so it is run again once the lab's supervisor has started the portal anew.
    let r: Round | null = null;
    for (let n = 1; n <= 3; n++) {
      const respawns = L().portalRespawns();
      const candidate = await round(path, n === 1);
      if (!candidate.refused && L().portalRespawns() === respawns) {
        r = candidate;
        break;
      }
      figure(`accept-lag: the portal exited during round ${n}; again once it answers`);
      await portalAnswering(path);
    }
    if (r === null) return assert.unreachable('the portal exited in each of 3 rounds');
    figure(`accept-lag: ${r.unanswered} of 3 calls at once left unanswered for 8 s`);
    assert.ok(r.unanswered > 0, 'calls arriving together left one in the queue');
    assert.equal((r.bareError as { code?: string } | null)?.code, 'ERR_NDSCTL_TIMEOUT', 'the bare call timed out');
    assert.ok(r.nudgedListing !== null, 'the nudged call was answered');
    assert.ok(
      r.nudgedListing.includes('client_list_length') || r.nudgedListing.includes('clients'),
      'a listing came back',
    );
    figure(`accept-lag: the nudged call was answered after ${r.nudges} nudge(s)`);
    assert.ok(r.nudges >= 1, 'it took a nudge');
  },
);

test.run();
