// tier: fast
/**
 * The listeners of `ended` that announce an end outside (RADIUS Stop and the hook and MQTT through the
 * upstream host, the ubus `ended` event) acted before the end record was durable: a crash in between brought the
 * session back ACTIVE after the restart, while upstream billing had already been told it was over. Now they follow
 * `end-written`, told once the journal's append of the end resolved (fsynced), or once a retry wrote an end the store
 * had refused; the gate and the meter still hear `ended` at once.
 *
 * The real session manager on the real journal in a temp dir, behind a store that holds (or refuses) end records on
 * their way to it, with the real upstream host and the real ubus event publisher.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EventPublisher } from '../../src/api/index.ts';
import { SluiceError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { UNANNOUNCED_WINDOW_MS } from '../../src/sessions/end-replay.ts';
import { DEFAULT_RETENTION } from '../../src/sessions/store.ts';
import { EndMarks } from '../../src/upstream/end-marks.ts';
import type { LoadResult, SessionStore, StoreRecord } from '../../src/sessions/store.ts';
import { SinkHost } from '../../src/upstream/host.ts';
import type { SinkEvent, UpstreamSink } from '../../src/upstream/sink.ts';
import type { BlobmsgTable } from '../../src/ubus/codec/index.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-end-written-', test.after);

/** Holds end records before the journal sees them (`hold`), or refuses them as a full flash would (`refuse`). */
class EndGate implements SessionStore {
  hold = false;
  refuse = false;
  private held: Array<() => void> = [];
  constructor(private readonly inner: SessionStore) {}
  release(): void {
    this.hold = false;
    for (const go of this.held.splice(0)) go();
  }
  load(): Promise<LoadResult> {
    return this.inner.load();
  }
  async append(records: readonly StoreRecord[]): Promise<void> {
    if (records.some((r) => r.t === 'end')) {
      if (this.refuse) throw new SluiceError('ERR_JOURNAL_WRITE', 'no space left on device');
      if (this.hold) await new Promise<void>((r) => this.held.push(r));
    }
    return this.inner.append(records);
  }
  compact(now: number): Promise<void> {
    return this.inner.compact(now);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

class RecordingSink implements UpstreamSink {
  readonly name = 'recording';
  ended: string[] = [];
  async start(): Promise<void> {}
  onEvent(event: SinkEvent): void {
    if (event.type === 'ended') this.ended.push(event.session.id);
  }
  stats() {
    return {};
  }
  async close(): Promise<void> {}
  destroy(): void {}
}

async function rig() {
  const dir = tempDir();
  const store = new EndGate(new JournalStore({ dir }));
  const sessions = new SessionManager({ store, endRetryMs: 20 });
  await sessions.recover();
  const log = createLogger({ level: 'error', write: () => undefined });
  const sink = new RecordingSink();
  const host = new SinkHost({ log });
  host.add(sink);
  host.attach(sessions);
  await host.start();
  const sent: Array<{ event: string; data: BlobmsgTable }> = [];
  const ubus = {
    state: 'ready' as const,
    send: async (event: string, data: BlobmsgTable = {}) => {
      sent.push({ event, data });
    },
  };
  const gates = { opened: () => Promise.resolve('opened' as const), closed: () => Promise.resolve('closed' as const) };
  new EventPublisher({ ubus, sessions, gates, log });
  const heardEnded: string[] = [];
  sessions.on('ended', (s) => heardEnded.push(s.id));
  const endEvents = () => sent.filter((s) => s.data.event === 'ended').map((s) => (s.data.session as BlobmsgTable).id);
  const journalText = () =>
    readdirSync(dir)
      .filter((n) => /^sessions\.\d+\.journal$/.test(n))
      .map((n) => readFileSync(join(dir, n), 'utf8'))
      .join('');
  return {
    store,
    sessions,
    sink,
    heardEnded,
    endEvents,
    journalText,
    close: async () => {
      await host.close();
      await sessions.close();
    },
  };
}

const grant = (reference: string) => ({ method: 'grant', reference, amount: 0n, asset: '', at: Date.now() });
const settle = () => new Promise((r) => setTimeout(r, 10));

test(
  'an end is announced upstream and on ubus only once ' + 'its record is on flash; the gate hears it at once',
  async () => {
    const r = await rig();
    const { session } = await r.sessions.activate({
      mac: '02:00:00:00:0e:01',
      metric: 'seconds',
      allotment: 600n,
      payment: grant('g1'),
    });
    r.store.hold = true;
    const ending = r.sessions.end(session.id, 'admin');
    await settle();
    assert.equal(r.heardEnded, [session.id], 'the gate and the meter hear `ended` at once');
    assert.not.match(
      r.journalText(),
      '"t":"end"',
      'the end record is not on flash yet (a crash now brings the session back)',
    );
    assert.equal(r.sink.ended, [], 'no Stop, hook or MQTT report of an end a crash would undo');
    assert.equal(r.endEvents(), [], 'no ubus `ended` event either');
    r.store.release();
    await ending;
    await settle();
    assert.match(r.journalText(), '"t":"end"');
    assert.equal(r.sink.ended, [session.id]);
    assert.equal(r.endEvents(), [session.id]);
    await r.close();
  },
);

test('an end the store refused is announced once, when the retry writes it; never before', async () => {
  const r = await rig();
  const { session } = await r.sessions.activate({
    mac: '02:00:00:00:0e:02',
    metric: 'seconds',
    allotment: 600n,
    payment: grant('g2'),
  });
  r.store.refuse = true;
  await r.sessions.end(session.id, 'admin');
  await new Promise((res) => setTimeout(res, 100)); // several retries, all refused
  assert.equal(r.heardEnded, [session.id]);
  assert.equal([r.sink.ended, r.endEvents()], [[], []], 'nothing announced while the end is not on flash');
  r.store.refuse = false;
  await new Promise((res) => setTimeout(res, 100));
  assert.match(r.journalText(), '"t":"end"');
  assert.equal([r.sink.ended, r.endEvents()], [[session.id], [session.id]], 'announced once, after the retry wrote it');
  await r.close();
});

test(
  'a restart hands the sinks the ends written just before ' + 'a crash, whose announcement may have been cut off',
  async () => {
    // The end is fsynced before it is announced: a kill -9 between the two leaves an end on flash that no sink queued.
    // recover() reports the ends within UNANNOUNCED_WINDOW_MS of the newest (the sinks' end marks drop the ones they
    // did announce); older ends were announced long before the stop.
    const dir = tempDir();
    const t0 = Date.now();
    let now = t0;
    const clock = { now: () => now };
    const first = new SessionManager({ store: new JournalStore({ dir }), clock });
    await first.recover();
    const old = (
      await first.activate({ mac: '02:00:00:00:0e:03', metric: 'seconds', allotment: 600n, payment: grant('g3') })
    ).session;
    await first.end(old.id, 'admin');
    now = t0 + UNANNOUNCED_WINDOW_MS + 5_000;
    const late = (
      await first.activate({ mac: '02:00:00:00:0e:04', metric: 'seconds', allotment: 600n, payment: grant('g4') })
    ).session;
    const live = (
      await first.activate({ mac: '02:00:00:00:0e:05', metric: 'seconds', allotment: 600n, payment: grant('g5') })
    ).session;
    await first.end(late.id, 'admin');
    await first.close();
    const second = new SessionManager({ store: new JournalStore({ dir }), clock });
    const report = await second.recover();
    assert.equal(
      report.lastEnds.map((s) => s.id),
      [late.id],
      'the last end, not the one long before it',
    );
    assert.equal(report.lastEnds[0]!.state, 'TERMINATED');
    assert.equal(
      report.active.map((s) => s.id),
      [live.id],
    );
    assert.equal(report.ended, [], 'nothing ran out while down');
    await second.close();
  },
);

test(
  'an end announced long ago is not announced again at a ' + 'restart once retention let go of it (its end marks did)',
  async () => {
    // A quiet router: the last session ended more than a day before a clean restart. The manager let go of it at
    // retention (24 h), and the sinks' end marks, kept only for sessions the manager knows, dropped its mark at the
    // stop; the journal, compacted only by size, still holds it as the newest end. Handing it to the sinks again would
    // send a second RADIUS Stop, hook and MQTT `ended` for a session announced a day before.
    const dir = tempDir();
    const t0 = Date.now();
    let now = t0;
    const clock = { now: () => now };
    const first = new SessionManager({ store: new JournalStore({ dir }), clock });
    await first.recover();
    const marks = EndMarks.open(join(dir, 'ended-marks'), [], (id) => first.get(id) !== null);
    const gone = (
      await first.activate({ mac: '02:00:00:00:0e:06', metric: 'seconds', allotment: 600n, payment: grant('g6') })
    ).session;
    await first.end(gone.id, 'admin');
    marks.mark(gone.id);
    now = t0 + DEFAULT_RETENTION.endedMaxAgeMs + 3_600_000;
    await first.checkpoint();
    marks.close();
    await first.close();
    assert.not.ok(
      EndMarks.open(join(dir, 'ended-marks'), [], () => true).has(gone.id),
      'the sink forgot it had announced it',
    );
    const second = new SessionManager({ store: new JournalStore({ dir }), clock });
    const report = await second.recover();
    assert.equal(
      report.lastEnds.map((s) => s.id),
      [],
      'an end past retention is not handed to the sinks again',
    );
    await second.close();
  },
);

test.run();
