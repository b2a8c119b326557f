// tier: fast
/**
 * The accept queue read from /proc/net/unix (a capture: a listener with two connections waiting and one accepted) and
 * the nudger's rule: it nudges only when connections wait and none is being served, the same ones on consecutive
 * looks; blind (no queue to see) it nudges on the timed schedule. Nudges are counted by a real listener.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAcceptQueue, readAcceptQueue, type AcceptQueue } from '../../src/portal/accept-queue.ts';
import { nudgeWhileSilent } from '../../src/portal/accept-nudge.ts';
import { until } from '../helpers/until.ts';

const capture = readFileSync(new URL('../fixtures/portal/proc-net-unix.txt', import.meta.url), 'utf8');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('the capture: two waiting (by their kernel address), one served; other sockets ignored', () => {
  const q = parseAcceptQueue(capture, '/tmp/ndsctl.sock');
  assert.equal(q, { waiting: ['00000000a7284c95', '000000000986ae4a'], serving: 1 });
});

test('the portal reached through another mount namespace: the bound name is a suffix of the path used', () => {
  const q = parseAcceptQueue(capture, '/proc/4242/root/tmp/ndsctl.sock');
  assert.is(q?.waiting.length, 2);
  assert.is(parseAcceptQueue(capture, '/tmp/other.sock'), undefined, 'no listener: the queue cannot be seen');
  assert.is(parseAcceptQueue(capture, '/x/tmp/xndsctl.sock'), undefined, 'a suffix counts only at a / boundary');
  assert.is(parseAcceptQueue('', '/tmp/ndsctl.sock'), undefined);
});

test('readAcceptQueue: a path through a link is matched as the file system resolves it (/var → /tmp)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-aq-'));
  try {
    const proc = join(dir, 'unix');
    writeFileSync(proc, capture.replaceAll('/tmp/ndsctl.sock', join(dir, 'tmp', 'ndsctl.sock')));
    mkdirSync(join(dir, 'tmp'));
    writeFileSync(join(dir, 'tmp', 'ndsctl.sock'), '');
    symlinkSync(join(dir, 'tmp'), join(dir, 'var'));
    assert.is((await readAcceptQueue(join(dir, 'var', 'ndsctl.sock'), proc))?.waiting.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readAcceptQueue: an unreadable file is "cannot see", never an error', async () => {
  assert.is(await readAcceptQueue('/tmp/ndsctl.sock', '/nonexistent/proc/net/unix'), undefined);
});

/** A real listener that counts connections (each nudge is one), for the length of `fn`. */
async function withListener(fn: (path: string, connections: () => number) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-nudge-'));
  const path = join(dir, 'ndsctl.sock');
  let n = 0;
  const server: Server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(path, r));
  try {
    await fn(path, () => n);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Answers the looks with `states` in turn (the last one from then on), counting them. */
function scripted(states: Array<AcceptQueue | undefined>): {
  read: (path: string) => Promise<AcceptQueue | undefined>;
  looks: () => number;
} {
  let i = 0;
  return { read: async () => states[Math.min(i++, states.length - 1)], looks: () => i };
}

const LOOKING = { afterMs: 10, max: 5, lookEveryMs: 10, stableLooks: 3 };

test('a portal serving a call is never nudged, however long the answer takes', async () => {
  await withListener(async (path, connections) => {
    let nudges = 0;
    const queue = scripted([{ waiting: ['a'], serving: 1 }]);
    const n = nudgeWhileSilent(path, { ...LOOKING, onNudge: () => nudges++, readQueue: queue.read });
    await until(() => queue.looks() >= 10, 30_000, 'ten looks', 5);
    n.stop();
    assert.is(nudges, 0);
    assert.is(connections(), 0);
  });
});

test('a sleeping portal with a queue: one nudge per stable sighting, none while the queue changes', async () => {
  await withListener(async (path, connections) => {
    let nudges = 0;
    const stuck = { waiting: ['a', 'b'], serving: 0 };
    // Two looks of a changing queue (the portal accepting), then the same queue three times (asleep), then served.
    const queue = scripted([
      { waiting: ['a'], serving: 0 },
      { waiting: ['b'], serving: 0 },
      stuck,
      stuck,
      stuck,
      { waiting: ['b'], serving: 1 },
    ]);
    const n = nudgeWhileSilent(path, { ...LOOKING, onNudge: () => nudges++, readQueue: queue.read });
    await until(() => queue.looks() >= 12, 30_000, 'the script and six looks more', 5);
    n.stop();
    assert.is(nudges, 1);
    await until(() => connections() === 1, 30_000, 'the nudge to connect', 5);
  });
});

test('a queue that cannot be seen: blind nudges, the first after 1 s; stop ends them', async () => {
  await withListener(async (path) => {
    const started = Date.now();
    const at: number[] = [];
    const n = nudgeWhileSilent(path, {
      afterMs: 10,
      max: 5,
      onNudge: () => at.push(Date.now() - started),
      readQueue: async () => undefined,
    });
    await until(() => at.length === 1, 30_000, 'the first blind nudge', 5);
    assert.ok(at[0]! >= 1000, `the first blind nudge came after ${at[0]} ms of silence`);
    n.stop();
    await sleep(2500);
    assert.is(at.length, 1, 'stop ends the nudging');
  });
});

test('max bounds the nudges of one call', async () => {
  await withListener(async (path) => {
    let nudges = 0;
    let k = 0;
    const n = nudgeWhileSilent(path, {
      afterMs: 5,
      max: 2,
      lookEveryMs: 5,
      stableLooks: 1,
      onNudge: () => nudges++,
      readQueue: async () => ({ waiting: [`c${k++}`], serving: 0 }),
    });
    await until(() => nudges === 2, 30_000, 'two nudges', 5);
    await sleep(100);
    n.stop();
    assert.is(nudges, 2);
  });
});

test.run();
