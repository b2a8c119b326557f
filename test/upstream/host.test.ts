// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SinkHost } from '../../src/upstream/host.ts';
import type { SessionNumbers, SinkEvent, UpstreamSink } from '../../src/upstream/sink.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { mac, payment, setup, useBytes } from '../sessions/helpers.ts';

function quietLog(lines: string[]): Logger {
  const log = createLogger();
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    log[level] = (msg, fields) => {
      lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
    };
  }
  return log;
}

class RecordingSink implements UpstreamSink {
  events: SinkEvent[] = [];
  /** Figures read during onEvent (the lookup reads live state, so sinks read it there). */
  figures: unknown[] = [];
  /** What figuresInto gave for each usage row (the figures the write recorded). */
  numbers: SessionNumbers[] = [];
  closed = 0;
  destroyed = 0;
  constructor(
    readonly name: string,
    private readonly failOn?: SinkEvent['type'],
    private readonly failStart = false,
  ) {}
  async start(): Promise<void> {
    if (this.failStart) throw new Error('no flash');
  }
  onEvent(event: SinkEvent): void {
    if (event.type === this.failOn) throw new Error(`broken on ${event.type}`);
    this.events.push(event);
    if (event.type === 'usage') {
      this.figures.push(...event.usage.map((u) => event.figures(u.sessionId)), event.figures('nope'));
      for (const u of event.usage) {
        const out: SessionNumbers = { user: null, allotment: 0, used: 0, remaining: 0, bytes: 0, state: 'PENDING' };
        if (event.figuresInto(u.sessionId, out)) this.numbers.push(out);
      }
    }
  }
  stats() {
    return { events: this.events.length };
  }
  async close(): Promise<void> {
    this.closed++;
  }
  destroy(): void {
    this.destroyed++;
  }
}

test('sinks hear started, topup, usage (with figures) and ended in order; a throwing sink stops nobody', async () => {
  const { manager, time } = await setup();
  const lines: string[] = [];
  const host = new SinkHost({ log: quietLog(lines), clock: time });
  const broken = new RecordingSink('broken', 'started');
  const good = new RecordingSink('good');
  host.add(broken);
  host.add(good);
  host.attach(manager);
  await host.start();
  const { session } = await manager.activate({
    mac: mac(1),
    metric: 'bytes',
    allotment: 1000n,
    payment: payment('p1'),
  });
  await manager.activate({ mac: mac(1), metric: 'bytes', allotment: 500n, payment: payment('p2') });
  useBytes(manager, [[mac(1), 600]]);
  host.usage([
    {
      mac: mac(1),
      sessionId: session.id,
      metric: 'bytes',
      deltaBytes: 600,
      deltaDownloadBytes: 500,
      deltaUploadBytes: 100,
      remainingBytes: 900,
      exhausted: false,
    },
  ]);
  await manager.end(session.id, 'admin');
  assert.equal(
    good.events.map((e) => e.type),
    ['started', 'topup', 'usage', 'ended'],
  );
  assert.equal(
    broken.events.map((e) => e.type),
    ['topup', 'usage', 'ended'],
  );
  assert.ok(lines.some((l) => l.includes('upstream sink failed on an event') && l.includes('"sink":"broken"')));
  assert.equal(good.figures, [
    { user: null, metric: 'bytes', allotment: 1500n, used: 600n, remaining: 900n, bytes: 600n, state: 'ACTIVE' },
    null,
  ]);
  const topup = good.events[1]!;
  assert.is(topup.type === 'topup' && topup.payment.reference, 'p2');
  assert.equal(host.stats(), { broken: { events: 3 }, good: { events: 4 } });
  await host.close();
  await host.close();
  assert.is(good.closed, 1, 'close is idempotent');
  await manager.activate({ mac: mac(2), metric: 'bytes', allotment: 1000n, payment: payment('p3') });
  assert.is(good.events.length, 4, 'detached after close');
});

test("attached, sinks hear the manager's usage once the journal holds it: a checkpoint's, then an end's", async () => {
  const { manager, time, store } = await setup();
  const host = new SinkHost({ log: quietLog([]), clock: time });
  const sink = new RecordingSink('sink');
  host.add(sink);
  host.attach(manager);
  await host.start();
  const { session } = await manager.activate({
    mac: mac(1),
    metric: 'bytes',
    allotment: 1000n,
    payment: payment('p9'),
  });
  const report = (bytes: number, remaining: number) => ({
    mac: mac(1),
    sessionId: session.id,
    metric: 'bytes' as const,
    deltaBytes: bytes,
    deltaDownloadBytes: bytes - 100,
    deltaUploadBytes: 100,
    remainingBytes: remaining,
    exhausted: false,
  });
  useBytes(manager, [[mac(1), 300]]);
  manager.reportUsage([report(300, 700)]);
  useBytes(manager, [[mac(1), 300]]);
  manager.reportUsage([report(300, 400)]);
  assert.equal(
    sink.events.map((e) => e.type),
    ['started'],
    'billed, not on flash: not told',
  );
  store.hold = true;
  const checkpoint = manager.checkpoint();
  useBytes(manager, [[mac(1), 100]]);
  manager.reportUsage([report(100, 300)]);
  assert.equal(
    sink.events.map((e) => e.type),
    ['started'],
    'the checkpoint is being written: not told',
  );
  store.release();
  await checkpoint;
  assert.equal(
    sink.events.map((e) => e.type),
    ['started', 'usage'],
  );
  const usage = sink.events[1]!;
  assert.ok(usage.type === 'usage');
  assert.equal(
    usage.usage,
    [{ ...report(600, 400), deltaDownloadBytes: 400, deltaUploadBytes: 200 }],
    "the two ticks the checkpoint holds, summed; not the third's",
  );
  assert.equal(sink.numbers, [{ user: null, allotment: 1000, used: 600, remaining: 400, bytes: 600, state: 'ACTIVE' }]);
  store.hold = true;
  const ended = manager.end(session.id, 'admin');
  await Promise.resolve();
  assert.is(sink.events.length, 2, 'the end record is being written: neither its usage nor the end told');
  store.release();
  await ended;
  await manager.writesSettled();
  assert.equal(
    sink.events.map((e) => e.type),
    ['started', 'usage', 'usage', 'ended'],
  );
  const last = sink.events[2]!;
  assert.ok(last.type === 'usage');
  assert.equal(last.usage, [report(100, 300)]);
  // The session's figures as it ended (what it had left), as each tick's report had them: a venue's lease reads a
  // holder's report as what is left to move.
  assert.equal(sink.numbers[1], {
    user: null,
    allotment: 1000,
    used: 700,
    remaining: 300,
    bytes: 700,
    state: 'ACTIVE',
  });
  await host.close();
  manager.reportUsage([report(1, 299)]);
  await manager.checkpoint();
  assert.is(sink.events.length, 4, 'detached after close');
});

test(
  'figuresInto gives figuresOf as numbers for every kind ' + 'of session: data, time (clock-derived), ended, unknown',
  async () => {
    const { manager, time } = await setup();
    const data = (
      await manager.activate({ mac: mac(1), metric: 'bytes', allotment: 5n << 32n, payment: payment(), user: 'alice' })
    ).session;
    const clock = (await manager.activate({ mac: mac(2), metric: 'seconds', allotment: 600n, payment: payment() }))
      .session;
    const spent = (await manager.activate({ mac: mac(3), metric: 'bytes', allotment: 1000n, payment: payment() }))
      .session;
    useBytes(manager, [
      [mac(1), 3 * 2 ** 32 + 17],
      [mac(2), 4096],
      [mac(3), 400],
    ]);
    await time.advance(61_500);
    await manager.end(spent.id, 'admin');
    const out = { user: null, allotment: -1, used: -1, remaining: -1, bytes: -1, state: 'PENDING' } as Parameters<
      typeof manager.figuresInto
    >[2];
    for (const id of [data.id, clock.id, spent.id]) {
      const f = manager.figuresOf(id, time.now())!;
      assert.ok(manager.figuresInto(id, time.now(), out), id);
      assert.equal(
        { ...out },
        {
          user: f.user,
          state: f.state,
          bytes: Number(f.bytes),
          used: Number(f.used),
          allotment: Number(f.allotment),
          remaining: Number(f.remaining),
        },
        id,
      );
    }
    assert.equal([out.used, out.remaining, out.state], [400, 0, 'TERMINATED']);
    assert.ok(manager.figuresInto(clock.id, time.now(), out));
    assert.equal([out.used, out.remaining, out.bytes], [61, 539, 4096]);
    assert.is(manager.figuresInto('nope', time.now(), out), false);
  },
);

test('a sink that cannot start is logged, destroyed and left out', async () => {
  const { manager } = await setup();
  const lines: string[] = [];
  const host = new SinkHost({ log: quietLog(lines) });
  const bad = new RecordingSink('bad', undefined, true);
  const good = new RecordingSink('good');
  host.add(bad);
  host.add(good);
  host.attach(manager);
  await host.start();
  assert.is(host.size, 1);
  assert.is(bad.destroyed, 1);
  assert.ok(lines.some((l) => l.startsWith('error upstream sink cannot start')));
  assert.ok(lines.some((l) => l.startsWith('info upstream sink started {"sink":"good"}')));
  await manager.activate({ mac: mac(1), metric: 'seconds', allotment: 60n, payment: payment() });
  assert.is(good.events.length, 1);
  assert.is(bad.events.length, 0);
  await host.close();
});

test('a sale made before the sinks started (the ubus object is up first) reaches them once they have', async () => {
  const { manager } = await setup();
  const host = new SinkHost({ log: quietLog([]) });
  // Like the real sinks: what comes before start() has nowhere to go (no queue open yet) and is dropped.
  class LateSink extends RecordingSink {
    started = false;
    override async start(): Promise<void> {
      await new Promise((r) => setTimeout(r, 20));
      this.started = true;
    }
    override onEvent(event: SinkEvent): void {
      if (this.started) super.onEvent(event);
    }
  }
  const sink = new LateSink('mqtt');
  host.add(sink);
  host.attach(manager);
  const { session } = await manager.activate({ mac: mac(1), metric: 'seconds', allotment: 60n, payment: payment() });
  const starting = host.start();
  await manager.activate({ mac: mac(1), metric: 'seconds', allotment: 60n, payment: payment('during') });
  await starting;
  assert.equal(
    sink.events.map((e) => e.type),
    ['started', 'topup'],
  );
  assert.is((sink.events[0] as { session: { id: string } }).session.id, session.id);
  await manager.activate({ mac: mac(2), metric: 'seconds', allotment: 60n, payment: payment('after') });
  assert.equal(sink.events.length, 3, 'and after the start, as before');
  await host.close();
});

test('a sink kept idle for a reload (state disabled) is not logged as started', async () => {
  const lines: string[] = [];
  const host = new SinkHost({ log: quietLog(lines) });
  const idle = new RecordingSink('mqtt');
  idle.stats = () => ({ events: 0, state: 'disabled' });
  host.add(idle);
  await host.start();
  assert.is(host.size, 1, 'still there for a reload');
  assert.not.ok(
    lines.some((l) => l.includes('upstream sink started')),
    lines.join('\n'),
  );
  assert.ok(lines.some((l) => l.startsWith('debug upstream sink disabled {"sink":"mqtt"}')));
  await host.close();
});

test.run();
