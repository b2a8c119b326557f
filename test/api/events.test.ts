// tier: fast
// The `sluice.session` event contract (src/api/events.ts): the kinds, what each carries, and when the publisher sends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventPublisher } from '../../src/api/index.ts';
import { SESSION_EVENT, SESSION_EVENT_KINDS, USAGE_EVENT_CHUNK, sessionEvent } from '../../src/api/events.ts';
import { createLogger } from '../../src/log.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import type { BlobmsgTable } from '../../src/ubus/codec/index.ts';
import { readFileSync } from 'node:fs';

const A = '02:00:00:00:0d:01';

function rig(
  opts: { closeOutcome?: Promise<'closed' | 'failed' | 'kept-open'>; openOutcome?: Promise<'opened' | 'pending'> } = {},
) {
  const sent: Array<{ event: string; data: BlobmsgTable }> = [];
  const ubus = {
    state: 'ready' as 'ready' | 'reconnecting',
    send: async (event: string, data: BlobmsgTable = {}) => {
      sent.push({ event, data });
    },
  };
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', write: (_level, line) => lines.push(line) });
  const gates = {
    opened: () => opts.openOutcome ?? Promise.resolve('opened' as const),
    closed: () => opts.closeOutcome ?? Promise.resolve('closed' as const),
  };
  return { sent, ubus, lines, log, gates };
}

async function manager(): Promise<SessionManager> {
  return SessionManager.open({ store: new MemoryStore() });
}

const grant = (reference: string) => ({ method: 'grant', reference, amount: 0n, asset: '', at: Date.now() });
const settle = () => new Promise((r) => setImmediate(r));
/** Until the publisher's `started` events went out (each a few turns after its session's opening settled). */
const startedOut = async (sent: Array<{ data: BlobmsgTable }>, n = 1) => {
  for (let i = 0; i < 20 && sent.filter((x) => x.data.event === 'started').length < n; i++) await settle();
};

test('the table lists every kind docs/ubus-api.md documents, and nothing else', () => {
  const doc = readFileSync(new URL('../../docs/ubus-api.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^\| `([a-z-]+)` \| /gm)].map((m) => m[1]);
  for (const kind of SESSION_EVENT_KINDS) assert.ok(documented.includes(kind), `${kind} is documented`);
  assert.is(new Set(SESSION_EVENT_KINDS).size, 6);
  assert.equal(sessionEvent('moved', { session: { id: 's' }, from: A }), {
    event: 'moved',
    session: { id: 's' },
    from: A,
  });
});

test(
  'started, topup and ended follow the sessions; ended ' + "waits for the gate's close and says how it went",
  async () => {
    let close!: (v: 'failed') => void;
    const r = rig({
      closeOutcome: new Promise((res) => {
        close = res;
      }),
    });
    const sessions = await manager();
    new EventPublisher({ ubus: r.ubus, sessions, gates: r.gates, log: r.log });
    const { session } = await sessions.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('g1') });
    await sessions.activate({ mac: A, metric: 'bytes', allotment: 500n, payment: grant('g2') });
    await sessions.end(session.id, 'admin');
    await settle();
    assert.equal(
      r.sent.map((s) => s.data.event),
      ['started', 'topup'],
      'ended waits for the close',
    );
    close('failed');
    await settle();
    assert.equal(
      r.sent.map((s) => s.data.event),
      ['started', 'topup', 'ended'],
    );
    assert.ok(r.sent.every((s) => s.event === SESSION_EVENT));
    const [started, topup, ended] = r.sent.map((s) => s.data) as [BlobmsgTable, BlobmsgTable, BlobmsgTable];
    assert.is((started.session as BlobmsgTable).allotment, '1000');
    assert.equal(topup.payment, { method: 'grant', reference: 'g2', amount: '0', asset: '' });
    assert.is((topup.session as BlobmsgTable).allotment, '1500');
    assert.is((ended.session as BlobmsgTable).state, 'TERMINATED');
    assert.is(ended.gate, 'failed');
    assert.ok(r.lines.some((l) => l.includes('session started')) && r.lines.some((l) => l.includes('session ended')));
    await sessions.close();
  },
);

test(
  "started: its line and event once the sale is on flash and the session's gate opening settled, after the " +
    "opening's own turn (a burst's openings reach nft first); a later event of the session sends it first",
  async () => {
    let open!: (v: 'opened') => void;
    const r = rig({
      openOutcome: new Promise((res) => {
        open = res;
      }),
    });
    // The journal's write held until told: a store whose fsync has not answered.
    const store = new MemoryStore();
    let fsync!: () => void;
    const held = new Promise<void>((res) => {
      fsync = res;
    });
    const append = store.append.bind(store);
    store.append = async (records) => {
      await held;
      await append(records);
    };
    const sessions = await SessionManager.open({ store });
    new EventPublisher({ ubus: r.ubus, sessions, gates: r.gates, log: r.log });
    const activation = sessions.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('o1') });
    await settle();
    open('opened');
    await settle();
    await settle();
    assert.equal(r.sent, [], 'nothing before the journal is durable, the gate opened or not');
    assert.not.ok(r.lines.some((l) => l.includes('session started')));
    fsync();
    await activation;
    assert.equal(r.sent, [], "durable, its gate opened: the event waits for the opening's turn to end");
    await settle();
    await settle();
    assert.equal(
      r.sent.map((x) => x.data.event),
      ['started'],
    );
    assert.ok(r.lines.some((l) => l.includes('session started')));

    // A session whose gate is still opening: a top-up sends its `started` first, then its own, and once.
    let opening: (gate: 'opened') => void = () => undefined;
    const slow = rig({ openOutcome: new Promise((resolve) => (opening = resolve)) });
    const other = await manager();
    new EventPublisher({ ubus: slow.ubus, sessions: other, gates: slow.gates, log: slow.log, gateWaitMs: 10_000 });
    await other.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('o2') });
    await settle();
    assert.equal(slow.sent, [], 'waits for the opening');
    await other.activate({ mac: A, metric: 'bytes', allotment: 500n, payment: grant('o3') });
    await settle();
    assert.equal(
      slow.sent.map((x) => x.data.event),
      ['started', 'topup'],
    );
    opening('opened'); // the wait ends with the test, not in a later file's time
    await settle();
    await sessions.close();
    await other.close();
  },
);

test("started: the events of sessions sold in one moment leave in one write, after that moment's turn", async () => {
  const r = rig();
  // As the ubus connection writes: the frames sent before its next tick leave in one write (connection.ts flush).
  let writes = 0;
  let flushing = false;
  const send = r.ubus.send;
  r.ubus.send = async (event, data) => {
    if (!flushing) {
      flushing = true;
      writes++;
      process.nextTick(() => (flushing = false));
    }
    return send(event, data);
  };
  const sessions = await manager();
  new EventPublisher({ ubus: r.ubus, sessions, gates: r.gates, log: r.log });
  const macs = Array.from({ length: 8 }, (_, i) => `02:00:00:00:0e:0${i}`);
  await Promise.all(
    macs.map((mac, i) => sessions.activate({ mac, metric: 'bytes', allotment: 1000n, payment: grant(`m${i}`) })),
  );
  assert.is(r.sent.length, 0, 'nothing in the turn the sales were answered in');
  await startedOut(r.sent, macs.length);
  assert.equal(r.sent.map((x) => (x.data.session as BlobmsgTable).mac).sort(), macs);
  assert.is(writes, 1, 'one write for the eight');
});

test('started: an opening that failed outright sends it as well', async () => {
  const r = rig({ openOutcome: Promise.reject(new Error('the gate broke')) });
  const sessions = await manager();
  new EventPublisher({ ubus: r.ubus, sessions, gates: r.gates, log: r.log });
  await sessions.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('o5') });
  await startedOut(r.sent);
  assert.equal(
    r.sent.map((x) => x.data.event),
    ['started'],
  );
  await sessions.close();
});

test("started: an opening that takes longer than the wait sends it at the wait's end", async () => {
  const r = rig({ openOutcome: new Promise(() => undefined) });
  const sessions = await manager();
  new EventPublisher({ ubus: r.ubus, sessions, gates: r.gates, log: r.log, gateWaitMs: 20 });
  await sessions.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('o4') });
  await settle();
  assert.equal(r.sent, []);
  await new Promise((res) => setTimeout(res, 60));
  // A busy machine can run the wait's timer and this one in the same turn: the send is a few turns after its timer.
  await startedOut(r.sent);
  assert.equal(
    r.sent.map((x) => x.data.event),
    ['started'],
  );
  await sessions.close();
});

test('moved: the session on its new MAC and the MAC it left, with a log line', async () => {
  const r = rig();
  const sessions = await manager();
  new EventPublisher({ ubus: r.ubus, sessions, gates: r.gates, log: r.log });
  const { session } = await sessions.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('g-move') });
  await sessions.move(session.id, '02:00:00:00:00:99');
  const moved = r.sent.find((s) => s.data.event === 'moved')!.data;
  assert.is(moved.from, A);
  assert.is((moved.session as BlobmsgTable).mac, '02:00:00:00:00:99');
  assert.is((moved.session as BlobmsgTable).id, session.id);
  assert.ok(r.lines.some((l) => l.includes('session moved')));
  await sessions.close();
});

test(
  'a close kept open by a newer session of the same MAC ' + 'counts as closed; no answer within the wait is `closing`',
  async () => {
    const kept = rig({ closeOutcome: Promise.resolve('kept-open') });
    const sessions = await manager();
    new EventPublisher({ ubus: kept.ubus, sessions, gates: kept.gates, log: kept.log });
    const slow = rig({ closeOutcome: new Promise(() => undefined) });
    new EventPublisher({ ubus: slow.ubus, sessions, gates: slow.gates, log: slow.log, gateWaitMs: 20 });
    const { session } = await sessions.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('g3') });
    await sessions.end(session.id, 'admin');
    await new Promise((r) => setTimeout(r, 50));
    assert.is(kept.sent.at(-1)!.data.gate, 'closed');
    assert.is(slow.sent.at(-1)!.data.gate, 'closing');
    await sessions.close();
  },
);

test(
  'usage: one event per tick in chunks of USAGE_EVENT_CHUNK, with used and remaining from the sessions; nothing ' +
    'while ubus is down',
  async () => {
    const r = rig();
    const sessions = await manager();
    const publisher = new EventPublisher({ ubus: r.ubus, sessions, gates: r.gates, log: r.log });
    const { session } = await sessions.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('g4') });
    await startedOut(r.sent);
    r.sent.length = 0;
    const fact = (i: number) => ({
      sessionId: i === 0 ? session.id : `gone-${i}`,
      mac: A,
      metric: 'bytes' as const,
      deltaBytes: 10,
      exhausted: false,
    });
    publisher.usage(Array.from({ length: USAGE_EVENT_CHUNK + 1 }, (_, i) => fact(i)));
    await settle();
    await settle();
    assert.is(r.sent.length, 2);
    const first = r.sent[0]!.data.sessions as BlobmsgTable[];
    assert.is(first.length, USAGE_EVENT_CHUNK);
    assert.equal(first[0], {
      id: session.id,
      mac: A,
      metric: 'bytes',
      delta: 10,
      used: '0',
      remaining: '1000',
      exhausted: false,
    });
    assert.is(first[1]!.used, null, 'a session the manager no longer has');
    r.ubus.state = 'reconnecting';
    r.sent.length = 0;
    publisher.usage([fact(0), { ...fact(0), billedAheadBytes: 5 }]);
    await settle();
    assert.is(r.sent.length, 0);
    assert.ok(
      r.lines.some((l) => l.includes('cut at the crossing')),
      'the cut is logged whether or not ubus is up',
    );
    await sessions.close();
  },
);

test("usage follows the sessions' `usage` event: what the meter billed, told once, is one ubus event", async () => {
  const r = rig();
  const sessions = await manager();
  new EventPublisher({ ubus: r.ubus, sessions, gates: r.gates, log: r.log });
  const { session } = await sessions.activate({ mac: A, metric: 'bytes', allotment: 1000n, payment: grant('g5') });
  sessions.applyUsage([session.id], [300], 1);
  await startedOut(r.sent);
  r.sent.length = 0;
  sessions.reportUsage([
    {
      mac: A,
      sessionId: session.id,
      metric: 'bytes',
      deltaBytes: 300,
      deltaDownloadBytes: 300,
      deltaUploadBytes: 0,
      remainingBytes: 700,
      exhausted: false,
    },
  ]);
  await settle();
  const line = { id: session.id, mac: A, metric: 'bytes', delta: 300, used: '300', remaining: '700', exhausted: false };
  assert.equal(
    r.sent.map((s) => s.data),
    [{ event: 'usage', sessions: [line] }],
  );
  await sessions.close();
});

test("a payment method's own event (escrow's hold, a close) is sent on sluice.session as it is given", () => {
  const r = rig();
  const publisher = new EventPublisher({
    ubus: r.ubus,
    sessions: { on: () => () => undefined, usageOf: () => null },
    gates: r.gates,
    log: r.log,
  });
  const figures = { session: 's1', mac: A, escrow_session: '0xe', metered_steps: '4', receipt_units: '2' };
  publisher.method('awaiting-receipt', figures);
  publisher.method('escrow-closed', { mac: A, escrow: { state: 'closed' } });
  assert.equal(
    r.sent.map((s) => s.data),
    [
      { event: 'awaiting-receipt', ...figures },
      { event: 'escrow-closed', mac: A, escrow: { state: 'closed' } },
    ],
  );
});

test.run();
