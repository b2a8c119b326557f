// tier: fast
/** The delivery loop on fake time against an in-memory source: bound, order, acknowledgements, retries, stop. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Backoff, retrying } from '../../src/backoff.ts';
import {
  DeliveryLoop,
  type DeliveryOptions,
  type DeliverySource,
  type DeliveryTimers,
  type Pause,
} from '../../src/upstream/delivery.ts';
import type { OutboxRecord } from '../../src/upstream/outbox-codec.ts';

class FakeTimers implements DeliveryTimers {
  at = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private deferred: Array<() => void> = [];
  private ids = 0;
  now(): number {
    return this.at;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.at + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }
  /** Runs deferred work and settled promises until nothing is left. */
  async settle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setImmediate(r));
      const work = this.deferred.splice(0);
      if (work.length === 0) return;
      for (const fn of work) fn();
    }
  }
  async advance(ms: number): Promise<void> {
    const end = this.at + ms;
    for (;;) {
      await this.settle();
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.at = next.at;
      this.timers = this.timers.filter((t) => t !== next);
      next.fn();
    }
    this.at = end;
    await this.settle();
  }
}

class MemorySource implements DeliverySource {
  records: OutboxRecord[] = [];
  acked: number[] = [];
  private listeners = new Set<() => void>();
  append(n: number): void {
    for (let i = 0; i < n; i++) {
      const seq = this.records.length + 1;
      this.records.push({ seq, durable: true, type: 0, at: 0, payload: Buffer.from(`r${seq}`) });
    }
    for (const l of this.listeners) l();
  }
  pending(_consumer: string, options: { after?: number; limit?: number }): OutboxRecord[] {
    return this.records
      .filter((r) => r.seq > (options.after ?? 0) && !this.acked.includes(r.seq))
      .slice(0, options.limit ?? 1000);
  }
  ack(_consumer: string, seq: number): void {
    if (!this.acked.includes(seq)) this.acked.push(seq);
  }
  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** A peer whose answers the test gives by hand. */
class Peer {
  sent: number[] = [];
  /** Per sequence number, the sends not answered yet, oldest first. */
  private waiting = new Map<number, Array<{ resolve: () => void; reject: (e: Error) => void }>>();
  send = (r: OutboxRecord): Promise<void> => {
    this.sent.push(r.seq);
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(r.seq) ?? [];
      list.push({ resolve, reject });
      this.waiting.set(r.seq, list);
    });
  };
  /** Answers the oldest unanswered send of `seq`. */
  answer(seq: number, ok = true): void {
    const w = this.waiting.get(seq)!.shift()!;
    if (ok) w.resolve();
    else w.reject(new Error('no answer'));
  }
}

function rig(extra: Partial<DeliveryOptions> = {}, max = 3) {
  const timers = new FakeTimers();
  const source = new MemorySource();
  const peer = new Peer();
  const pauses: Array<Pause | null> = [];
  const loop = new DeliveryLoop({
    source,
    consumer: 'c',
    send: peer.send,
    maxInFlight: () => max,
    timers,
    backoff: new Backoff({ minMs: 1000, maxMs: 8000 }),
    onFailure: (_e, _r, p) => pauses.push(p),
    ...extra,
  });
  return { timers, source, peer, loop, pauses };
}

test(
  'sends oldest first, never more than the bound in ' + 'flight, and acknowledges what the peer acknowledged',
  async () => {
    const { timers, source, peer, loop } = rig();
    source.append(5);
    loop.start();
    await timers.settle();
    assert.equal(peer.sent, [1, 2, 3]);
    peer.answer(2);
    await timers.settle();
    assert.equal(source.acked, [2]);
    assert.equal(peer.sent, [1, 2, 3, 4]);
    for (const seq of [1, 3, 4]) peer.answer(seq);
    await timers.settle();
    assert.equal(peer.sent, [1, 2, 3, 4, 5]);
    source.append(1);
    await timers.settle();
    assert.equal(peer.sent, [1, 2, 3, 4, 5, 6], 'an append wakes the loop');
    assert.is(loop.inFlightCount, 2);
  },
);

test(
  'a failure pauses once per round, then one probe at a time, one more per acknowledgement; the pause doubles to ' +
    'its cap',
  async () => {
    const { timers, source, peer, loop, pauses } = rig({}, 4);
    source.append(8);
    loop.start();
    await timers.settle();
    for (const seq of [1, 2, 3, 4]) peer.answer(seq, false);
    await timers.settle();
    assert.equal(pauses, [{ ms: 1000, first: true, capped: false }, null, null, null]);
    assert.is(loop.windowSize, 1);
    await timers.advance(999);
    assert.equal(peer.sent, [1, 2, 3, 4], 'nothing during the pause');
    await timers.advance(1);
    assert.equal(peer.sent, [1, 2, 3, 4, 1], 'the oldest failed record probes alone');
    peer.answer(1, false);
    await timers.advance(1999);
    assert.equal(peer.sent.length, 5);
    await timers.advance(1);
    assert.equal(peer.sent.at(-1), 1);
    peer.answer(1);
    await timers.settle();
    assert.equal(peer.sent.slice(6), [2, 3], 'two after one acknowledgement');
    assert.equal(
      pauses.filter((p) => p !== null).map((p) => p!.ms),
      [1000, 2000],
    );
    for (const seq of [2, 3]) peer.answer(seq);
    await timers.settle();
    assert.equal(peer.sent.slice(8), [4, 5, 6, 7]);
    assert.is(loop.windowSize, 4);
  },
);

test('the pause stops growing at its cap, and a success starts again from the shortest', async () => {
  const { timers, source, peer, loop, pauses } = rig({}, 1);
  source.append(1);
  loop.start();
  for (let i = 0; i < 6; i++) {
    await timers.advance(10_000);
    peer.answer(1, false);
  }
  await timers.settle();
  assert.equal(
    pauses.map((p) => p!.ms),
    [1000, 2000, 4000, 8000, 8000, 8000],
  );
  assert.equal(
    pauses.map((p) => p!.capped),
    [false, false, false, true, true, true],
  );
  await timers.advance(10_000);
  peer.answer(1);
  source.append(1);
  await timers.settle();
  peer.answer(2, false);
  await timers.settle();
  assert.equal(pauses.at(-1), { ms: 1000, first: true, capped: false });
  assert.is(loop.pausedForMs, 1000);
  loop.retryNow();
  await timers.settle();
  assert.equal(peer.sent.at(-1), 2, 'retryNow ends the pause');
});

test("'skip' acknowledges without taking room; busy slots and beforeRound share the bound", async () => {
  let busy = 1;
  const rounds: number[] = [];
  const peer = new Peer();
  const { timers, source, loop } = rig(
    {
      send: (r) => (r.seq % 2 === 0 ? 'skip' : peer.send(r)),
      busy: () => busy,
      beforeRound: () => rounds.push(1),
    },
    3,
  );
  source.append(8);
  loop.start();
  await timers.settle();
  assert.equal(peer.sent, [1, 3], 'room 3 minus 1 busy');
  assert.equal(source.acked, [2]);
  busy = 0;
  loop.kick();
  await timers.settle();
  assert.equal(peer.sent, [1, 3, 5]);
  assert.equal(source.acked, [2, 4]);
  assert.ok(rounds.length >= 2);
});

test(
  'pause() sends nothing new; resume() sends again what the ' + 'old connection had in flight and ignores its answers',
  async () => {
    const { timers, source, peer, loop } = rig();
    source.append(4);
    loop.start();
    await timers.settle();
    peer.answer(1);
    loop.pause();
    await timers.settle();
    assert.equal(peer.sent, [1, 2, 3], 'paused: 4 waits');
    peer.answer(2); // taken: the peer did acknowledge it
    await timers.settle();
    assert.equal(source.acked, [1, 2]);
    loop.resume();
    await timers.settle();
    assert.equal(peer.sent, [1, 2, 3, 3, 4]);
    peer.answer(3, false); // the first connection's answer: ignored
    await timers.settle();
    assert.is(loop.pausedForMs, 0);
    assert.is(loop.inFlightCount, 2);
  },
);

test('close() waits for the answers in flight, bounded; destroy() stops at once', async () => {
  const { timers, source, peer, loop } = rig();
  source.append(5);
  loop.start();
  await timers.settle();
  let closed = false;
  const closing = loop.close(1000).then(() => {
    closed = true;
  });
  peer.answer(1);
  peer.answer(2);
  await timers.settle();
  assert.not.ok(closed);
  assert.equal(peer.sent, [1, 2, 3], 'nothing new while closing');
  peer.answer(3);
  await closing;
  assert.equal(source.acked, [1, 2, 3]);

  const second = rig();
  second.source.append(2);
  second.loop.start();
  await second.timers.settle();
  const bounded = second.loop.close(500);
  await second.timers.advance(500);
  await bounded;
  second.peer.answer(1);
  await second.timers.settle();
  assert.equal(second.source.acked, [1], 'a late answer is still taken');

  const third = rig();
  third.source.append(2);
  third.loop.start();
  await third.timers.settle();
  third.loop.destroy();
  third.peer.answer(1);
  third.source.append(1);
  await third.timers.settle();
  assert.equal(third.source.acked, []);
  assert.equal(third.peer.sent, [1, 2]);
});

test('Backoff: doubling to the cap, jitter within its band, retrying() for idempotent requests', async () => {
  const exact = new Backoff({ minMs: 500, maxMs: 3000 });
  assert.equal([exact.next(), exact.next(), exact.next(), exact.next()], [500, 1000, 2000, 3000]);
  exact.reset();
  assert.is(exact.next(), 500);
  const low = new Backoff({ minMs: 1000, maxMs: 60_000, jitter: 0.2, random: () => 0 });
  const high = new Backoff({ minMs: 1000, maxMs: 60_000, jitter: 0.2, random: () => 0.999999 });
  assert.equal([low.next(), low.next()], [800, 1600]);
  assert.equal([high.next(), high.next()], [1200, 2400]);
  const slept: number[] = [];
  let calls = 0;
  const result = await retrying(async () => ++calls, {
    retries: 2,
    again: (n) => n < 10,
    backoff: new Backoff({ minMs: 50, maxMs: Infinity }),
    sleep: async (ms) => {
      slept.push(ms);
    },
  });
  assert.equal([result, calls, slept], [3, 3, [50, 100]]);
});

test.run();
