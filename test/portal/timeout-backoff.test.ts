// tier: fast
/**
 * A portal call that times out is not followed at once by the next: the portal still does the work of a request whose
 * caller left, so the runner keeps the connection and holds its queue until the portal answered it (then the next goes
 * at once) or a bound passed (a frozen portal: then a pause, 1 s doubling with each timeout in a row up to its bound);
 * the next calls' deadline is longer, and `stats` counts it all (portal/runner.ts TimeoutBackoff, #execSocket). Against
 * a fake-slow portal on a real unix socket: a server that holds the requests it is told to and answers the others;
 * every timer (deadlines, holds, pauses) fires on cue, so nothing here depends on how fast the machine is.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Valve } from '../../src/portal/index.ts';
import { LISTING_MS_PER_CLIENT } from '../../src/portal/valve.ts';
import { MAX_DEADLINE_FACTOR, TimeoutBackoff } from '../../src/portal/runner.ts';
import type { Timers } from '../../src/time.ts';
import { rejectsWithCode } from '../helpers/assert.ts';
import { rawNdsctlServer, type RawNdsctlServer } from './raw-ndsctl.ts';

const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';
const C = '02:00:00:00:0c:03';
const FIXTURES = fileURLToPath(new URL('../fixtures/ndsctl/', import.meta.url));
const DEADLINE_MS = 5000;
const PAUSE_MS = 1000;
const dir = mkdtempSync(join(tmpdir(), 'sluice-backoff-'));
const cleanups: Array<() => Promise<void> | void> = [];

/** Polls `check` (real time) until it returns a value: a generous bound, never a timing assertion. */
async function waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test.after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

/** Timers that only ever fire when the test says: each armed timer's ms is logged. */
function cueTimers(): { timers: Timers; armed: number[]; fire: (ms: number) => Promise<void> } {
  const pending: Array<{ fn: () => void; ms: number; handle: object }> = [];
  const armed: number[] = [];
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const handle = {};
      pending.push({ fn, ms, handle });
      armed.push(ms);
      return handle;
    },
    clearTimeout: (handle) => {
      const i = pending.findIndex((p) => p.handle === handle);
      if (i >= 0) pending.splice(i, 1);
    },
  };
  const fire = async (ms: number): Promise<void> => {
    await waitFor(`a ${ms} ms timer`, 30_000, () => (pending.some((p) => p.ms === ms) ? true : undefined));
    const [p] = pending.splice(
      pending.findIndex((q) => q.ms === ms),
      1,
    );
    p!.fn();
  };
  return { timers, armed, fire };
}

/**
 * The fake-slow portal: answers `Yes` at once unless `hang` is set, then holds the request unanswered until
 * `answerHeld`.
 */
async function slowPortal(): Promise<RawNdsctlServer & { path: string; hang: { on: boolean } }> {
  const path = join(dir, `ndsctl-${cleanups.length}.sock`);
  const hang = { on: false };
  const server = await rawNdsctlServer(path, () => (hang.on ? null : 'Yes'));
  cleanups.push(() => server.close());
  return { ...server, path, hang };
}

/** The requests the portal received, without their CRLF CRLF frame. */
const asked = (portal: { seen: string[] }): string[] => portal.seen.map((r) => r.trim());

function valveOn(path: string, timers: Timers, maxMs = 4 * PAUSE_MS): Valve {
  const valve = new Valve({
    command: ['/nonexistent/ndsctl'],
    socketPath: () => path,
    timeoutMs: DEADLINE_MS,
    timeoutBackoffMs: PAUSE_MS,
    timeoutBackoffMaxMs: maxMs,
    timers,
  });
  cleanups.push(() => valve.destroy());
  return valve;
}

test('a call given up on is waited for, not piled on: the next reaches the portal once it was answered', async () => {
  const portal = await slowPortal();
  const cue = cueTimers();
  const valve = valveOn(portal.path, cue.timers);
  portal.hang.on = true;
  const first = valve.runner.run(['auth', A]);
  await waitFor('the portal to hold the first call', 30_000, () => (portal.seen.length === 1 ? true : undefined));
  await cue.fire(DEADLINE_MS);
  await rejectsWithCode(first, 'ERR_NDSCTL_TIMEOUT');
  portal.hang.on = false;
  // A storm of calls after it: none reaches the portal while it is still on the first (its caller gone or not).
  const next = [B, C].map((mac) => valve.runner.run(['auth', mac]));
  for (const p of next) p.catch(() => {});
  await waitFor('the hold', 30_000, () => (valve.callCounts()['orphan_waits'] === 1 ? true : undefined));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(asked(portal), [`auth ${A}`], 'nothing asked while the portal is on the first');
  assert.is(valve.callCounts()['timeouts'], 1);
  portal.answerHeld();
  for (const r of await Promise.all(next)) assert.is(r.stdout, 'Yes');
  assert.equal(asked(portal), [`auth ${A}`, `auth ${B}`, `auth ${C}`]);
  assert.is(valve.callCounts()['late_answers'], 1);
  assert.is(valve.callCounts()['backoff_waits'], undefined, 'answered after all: no pause');
  // The hold's bound (MAX_DEADLINE_FACTOR × the deadline from the start), then the call after the timeout with twice
  // the deadline; once it was answered in time, the next has the configured one.
  assert.equal(cue.armed, [DEADLINE_MS, (MAX_DEADLINE_FACTOR - 1) * DEADLINE_MS, 2 * DEADLINE_MS, DEADLINE_MS]);
});

test('a frozen portal: each call held to its bound, then a pause doubling to its own; an answer ends it', async () => {
  const portal = await slowPortal();
  const cue = cueTimers();
  const valve = valveOn(portal.path, cue.timers, 3 * PAUSE_MS);
  portal.hang.on = true;
  const deadlines = [DEADLINE_MS, 2 * DEADLINE_MS, 4 * DEADLINE_MS, 8 * DEADLINE_MS, 8 * DEADLINE_MS];
  // A call whose deadline reached the bound is hung up at it: nothing left to hold.
  const holds = deadlines.map((d) => MAX_DEADLINE_FACTOR * DEADLINE_MS - d);
  const pauses = [PAUSE_MS, 2 * PAUSE_MS, 3 * PAUSE_MS, 3 * PAUSE_MS];
  for (let i = 0; i < deadlines.length; i++) {
    const call = valve.runner.run(['json', A], 'read');
    if (i > 0) {
      if (holds[i - 1]! > 0) await cue.fire(holds[i - 1]!);
      await cue.fire(pauses[i - 1]!);
    }
    await waitFor('the portal to hold the call', 30_000, () => (portal.seen.length === i + 1 ? true : undefined));
    await cue.fire(deadlines[i]!);
    await rejectsWithCode(call, 'ERR_NDSCTL_TIMEOUT');
  }
  assert.is(valve.callCounts()['timeouts'], 5);
  portal.hang.on = false;
  const answered = valve.runner.run(['auth', B]);
  await cue.fire(3 * PAUSE_MS);
  assert.is((await answered).stdout, 'Yes');
  assert.is(valve.callCounts()['backoff_waits'], 5);
  assert.is(valve.callCounts()['orphan_waits'], 3);
  assert.is(valve.callCounts()['late_answers'], undefined);
  const before = cue.armed.length;
  assert.is((await valve.runner.run(['auth', C])).stdout, 'Yes');
  assert.equal(cue.armed.slice(before), [DEADLINE_MS], 'no pause, the configured deadline');
});

test("a listing's deadline grows with the clients it may list: those expected, then the last listing's", async () => {
  const portal = await slowPortal();
  const cue = cueTimers();
  const valve = valveOn(portal.path, cue.timers);
  portal.hang.on = true;
  const first = valve.snapshot('snapshot', 64);
  await waitFor('the listing', 30_000, () => (portal.seen.length === 1 ? true : undefined));
  assert.equal(cue.armed, [DEADLINE_MS + 64 * LISTING_MS_PER_CLIENT]);
  await cue.fire(DEADLINE_MS + 64 * LISTING_MS_PER_CLIENT);
  await rejectsWithCode(first, 'ERR_NDSCTL_TIMEOUT');
  // The portal answered it after all (real openNDS 9.10 output, 3 clients): a listing expecting none gets their share
  // (and the backoff's doubling).
  const second = valve.snapshot();
  second.catch(() => {});
  portal.answerHeld(readFileSync(join(FIXTURES, 'opennds-9.10-all-3-clients.json'), 'utf8'));
  await waitFor('the second listing', 30_000, () => (portal.seen.length === 2 ? true : undefined));
  assert.is(cue.armed.at(-1), 2 * (DEADLINE_MS + 3 * LISTING_MS_PER_CLIENT));
});

test('TimeoutBackoff: one pause per timeout, none once the portal answered', () => {
  const b = new TimeoutBackoff(100, 1000);
  assert.is(b.takePause(), 0);
  b.timedOut();
  assert.is(b.takePause(), 100);
  assert.is(b.takePause(), 0, 'taken once');
  b.timedOut();
  assert.is(b.takePause(), 200);
  assert.is(b.deadline(50), 200);
  b.answered(true);
  assert.is(b.takePause(), 0, 'answered, late: no pause');
  assert.is(b.deadline(50), 200, 'answered only after nudges: the longer deadline stays');
  b.answered();
  assert.is(b.takePause(), 0);
  assert.is(b.deadline(50), 50);
});

test.run();
