// tier: fast
/**
 * The accept queue read from /proc/net/unix (a capture: a listener with two connections waiting and one accepted) and
 * the nudger's rule: it nudges only when connections wait and none is being served, the same ones on consecutive
 * looks; blind (no queue to see) it nudges on the timed schedule. Nudges are counted by a real listener.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAcceptQueue, readAcceptQueue, type AcceptQueue } from '../../src/portal/accept-queue.ts';
import { nudgeWhileSilent } from '../../src/portal/accept-nudge.ts';

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

test('readAcceptQueue: an unreadable file is "cannot see", never an error', async () => {
  assert.is(await readAcceptQueue('/tmp/ndsctl.sock', '/nonexistent/proc/net/unix'), undefined);
});

/** A real listener that counts connections (each nudge is one). */
async function counting(): Promise<{ path: string; count: () => number; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-nudge-'));
  const path = join(dir, 'ndsctl.sock');
  let n = 0;
  const server: Server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    count: () => n,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function scripted(states: Array<AcceptQueue | undefined>): (path: string) => Promise<AcceptQueue | undefined> {
  let i = 0;
  return async () => states[Math.min(i++, states.length - 1)];
}

test('a portal serving a call is never nudged, however long the answer takes', async () => {
  const l = await counting();
  try {
    let nudges = 0;
    const n = nudgeWhileSilent(l.path, {
      afterMs: 10,
      max: 5,
      lookEveryMs: 10,
      stableLooks: 3,
      onNudge: () => nudges++,
      readQueue: scripted([{ waiting: ['a'], serving: 1 }]),
    });
    await sleep(200);
    n.stop();
    assert.is(nudges, 0);
    assert.is(l.count(), 0);
  } finally {
    await l.close();
  }
});

test('a sleeping portal with a queue: one nudge per stable sighting, none while the queue changes', async () => {
  const l = await counting();
  try {
    let nudges = 0;
    const stuck = { waiting: ['a', 'b'], serving: 0 };
    const n = nudgeWhileSilent(l.path, {
      afterMs: 10,
      max: 5,
      lookEveryMs: 10,
      stableLooks: 3,
      onNudge: () => nudges++,
      // Two looks of a changing queue (the portal accepting), then the same queue three times (asleep), then served.
      readQueue: scripted([
        { waiting: ['a'], serving: 0 },
        { waiting: ['b'], serving: 0 },
        stuck,
        stuck,
        stuck,
        { waiting: ['b'], serving: 1 },
      ]),
    });
    await sleep(250);
    n.stop();
    assert.is(nudges, 1);
    await sleep(50);
    assert.is(l.count(), 1, 'the nudge was one connection');
  } finally {
    await l.close();
  }
});

test('a queue that cannot be seen: blind nudges after 1 s, then after twice the wait', async () => {
  const l = await counting();
  try {
    let nudges = 0;
    const n = nudgeWhileSilent(l.path, {
      afterMs: 10,
      max: 5,
      onNudge: () => nudges++,
      readQueue: async () => undefined,
    });
    await sleep(700);
    assert.is(nudges, 0, 'none before a second of silence');
    await sleep(600);
    assert.is(nudges, 1);
    n.stop();
    await sleep(2200);
    assert.is(nudges, 1, 'stop ends the nudging');
  } finally {
    await l.close();
  }
});

test('max bounds the nudges of one call', async () => {
  const l = await counting();
  try {
    let nudges = 0;
    let k = 0;
    const n = nudgeWhileSilent(l.path, {
      afterMs: 5,
      max: 2,
      lookEveryMs: 5,
      stableLooks: 1,
      onNudge: () => nudges++,
      readQueue: async () => ({ waiting: [`c${k++}`], serving: 0 }),
    });
    await sleep(200);
    n.stop();
    assert.is(nudges, 2);
  } finally {
    await l.close();
  }
});

test.run();
