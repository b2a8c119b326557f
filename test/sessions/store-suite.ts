/**
 * One behavioural suite for every SessionStore (MQTT.js abstract_store style). A harness gives a backing that can be
 * opened again, which is how a restart is modelled: close the store, open a new one on the same backing, load.
 */
import { randomBytes } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Session } from '../../src/sessions/model.ts';
import type { RetentionPolicy, SessionStore, StoreRecord } from '../../src/sessions/store.ts';
import { isSluiceError } from '../../src/errors.ts';

export interface StoreBacking {
  open(retention?: Partial<RetentionPolicy>): SessionStore;
  cleanup(): Promise<void>;
}

const T0 = 1_750_000_000_000;
let seq = 0;
// Distinct per process: the crash test's child writes sessions the parent then adds to.
const prefix = randomBytes(4).toString('hex');

export function makeSession(over: Partial<Session> = {}): Session {
  const n = ++seq;
  return {
    id: prefix + n.toString(16).padStart(8, '0'),
    mac: `02:00:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
    ip: '10.0.0.2',
    user: null,
    plan: 'default',
    metric: 'bytes',
    allotment: 1_000_000n,
    used: 0,
    bytes: 0,
    createdAt: T0,
    startedAt: T0,
    expiresAt: null,
    endedAt: null,
    state: 'ACTIVE',
    endCause: null,
    payments: [{ method: 'grant', reference: `g-${n}`, amount: 0n, asset: '', at: T0 }],
    ...over,
  };
}

export function openRecord(s: Session): StoreRecord {
  return { t: 'open', session: s, keys: [`ref:${s.payments[0]!.method}:${s.payments[0]!.reference}`] };
}

export function storeSuite(name: string, makeBacking: () => Promise<StoreBacking>): void {
  const it = suite<{ backing: StoreBacking; store: SessionStore }>(name);

  it.before.each(async (ctx) => {
    ctx.backing = await makeBacking();
    ctx.store = ctx.backing.open();
  });
  it.after.each(async (ctx) => {
    await ctx.store.close();
    await ctx.backing.cleanup();
  });

  async function reopen(ctx: { backing: StoreBacking; store: SessionStore }, retention?: Partial<RetentionPolicy>) {
    await ctx.store.close();
    ctx.store = ctx.backing.open(retention);
    return ctx.store.load();
  }

  it('an empty store loads empty', async ({ store }) => {
    const loaded = await store.load();
    assert.is(loaded.sessions.size, 0);
    assert.is(loaded.refs.size, 0);
    assert.equal(loaded.warnings, []);
  });

  it('a usage checkpoint keeps the meter mark it includes, across a reopen and a compaction', async (ctx) => {
    await ctx.store.load();
    const data = makeSession({ allotment: 10_000_000n });
    await ctx.store.append([openRecord(data)]);
    await ctx.store.append([
      { t: 'usage', at: T0 + 10, entries: [[data.id, 5000, 5000, { token: -123456, down: 4096, up: 1024 }]] },
    ]);
    await ctx.store.append([
      { t: 'usage', at: T0 + 20, entries: [[data.id, 6000, 6000, { token: -123456, down: 5120, up: 1024 }]] },
    ]);
    let loaded = await reopen(ctx);
    assert.equal(loaded.sessions.get(data.id)!.meterMark, { token: -123456, down: 5120, up: 1024 });
    assert.is(loaded.sessions.get(data.id)!.used, 6000);
    await ctx.store.compact(T0 + 30);
    loaded = await reopen(ctx);
    assert.equal(
      loaded.sessions.get(data.id)!.meterMark,
      { token: -123456, down: 5120, up: 1024 },
      'kept by compaction',
    );
  });

  it('open, top-up, usage and end survive a reopen with bigints intact, counters up to 2^53 - 1 exact', async (ctx) => {
    await ctx.store.load();
    const time = makeSession({ metric: 'seconds', allotment: 600n, expiresAt: T0 + 600_000, user: 'alice' });
    const data = makeSession({ allotment: (1n << 70n) + 3n });
    await ctx.store.append([openRecord(time), openRecord(data)]);
    await ctx.store.append([
      {
        t: 'topup',
        id: time.id,
        add: 300n,
        keys: ['ref:x:1', 'idem:k1'],
        at: T0 + 5,
        payment: {
          method: 'x',
          reference: '1',
          amount: 123456789012345678901234567890n,
          asset: 'USDC',
          steps: 3n,
          at: T0 + 5,
        },
      },
    ]);
    await ctx.store.append([
      {
        t: 'usage',
        at: T0 + 10,
        entries: [
          [data.id, 5000, 5000],
          [time.id, 10, 777],
        ],
      },
    ]);
    await ctx.store.append([
      {
        t: 'end',
        id: data.id,
        state: 'EXPIRED',
        cause: 'data-limit',
        at: T0 + 20,
        used: Number.MAX_SAFE_INTEGER,
        bytes: Number.MAX_SAFE_INTEGER - 1,
      },
    ]);
    const loaded = await reopen(ctx);
    const t = loaded.sessions.get(time.id)!;
    assert.is(t.allotment, 900n);
    assert.is(t.expiresAt, T0 + 900_000);
    assert.is(t.bytes, 777);
    assert.is(t.user, 'alice');
    assert.is(t.payments.length, 2);
    assert.equal(t.payments[1], {
      method: 'x',
      reference: '1',
      amount: 123456789012345678901234567890n,
      asset: 'USDC',
      steps: 3n,
      at: T0 + 5,
    });
    const d = loaded.sessions.get(data.id)!;
    assert.is(d.state, 'EXPIRED');
    assert.is(d.endCause, 'data-limit');
    assert.is(d.endedAt, T0 + 20);
    assert.is(d.used, Number.MAX_SAFE_INTEGER);
    assert.is(d.bytes, Number.MAX_SAFE_INTEGER - 1);
    assert.ok(loaded.refs.has('idem:k1'));
    assert.ok(loaded.refs.has(`ref:grant:${data.payments[0]!.reference}`));
  });

  it('usage checkpoints never rewind and never touch ended sessions', async (ctx) => {
    await ctx.store.load();
    const s = makeSession();
    await ctx.store.append([openRecord(s), { t: 'usage', at: T0 + 1, entries: [[s.id, 900, 900]] }]);
    await ctx.store.append([
      {
        t: 'usage',
        at: T0 + 2,
        entries: [
          [s.id, 100, 100],
          ['ffffffffffffffff', 5, 5],
        ],
      },
    ]);
    let loaded = await reopen(ctx);
    assert.is(loaded.sessions.get(s.id)!.used, 900);
    assert.not.ok(loaded.sessions.has('ffffffffffffffff'), 'usage for an unknown id invents nothing');
    await ctx.store.append([
      { t: 'end', id: s.id, state: 'TERMINATED', cause: 'admin', at: T0 + 3, used: 950, bytes: 950 },
    ]);
    await ctx.store.append([{ t: 'usage', at: T0 + 4, entries: [[s.id, 5000, 5000]] }]);
    loaded = await reopen(ctx);
    assert.is(loaded.sessions.get(s.id)!.used, 950);
  });

  it('records are copied: mutating an appended object changes nothing stored', async (ctx) => {
    await ctx.store.load();
    const s = makeSession();
    const record = openRecord(s);
    const appending = ctx.store.append([record]);
    s.allotment = 1n;
    s.payments.push({ method: 'evil', reference: 'r', amount: 0n, asset: '', at: 0 });
    await appending;
    const loaded = await reopen(ctx);
    assert.is(loaded.sessions.get(s.id)!.allotment, 1_000_000n);
    assert.is(loaded.sessions.get(s.id)!.payments.length, 1);
  });

  it('load returns copies the caller owns', async (ctx) => {
    await ctx.store.load();
    const s = makeSession();
    await ctx.store.append([openRecord(s)]);
    let loaded = await reopen(ctx);
    loaded.sessions.get(s.id)!.allotment = 5n;
    loaded = await reopen(ctx);
    assert.is(loaded.sessions.get(s.id)!.allotment, 1_000_000n);
  });

  it('many concurrent appends are all kept, in order per session', async (ctx) => {
    await ctx.store.load();
    const sessions = Array.from({ length: 200 }, () => makeSession());
    await Promise.all(sessions.map((s) => ctx.store.append([openRecord(s)])));
    await Promise.all(sessions.map((s, i) => ctx.store.append([{ t: 'usage', at: T0 + 1, entries: [[s.id, i, i]] }])));
    const loaded = await reopen(ctx);
    assert.is(loaded.sessions.size, 200);
    sessions.forEach((s, i) => assert.is(loaded.sessions.get(s.id)!.used, i));
  });

  it('compaction keeps live sessions, drops ended ones past the retention and old payment keys', async (ctx) => {
    await ctx.store.close();
    ctx.store = ctx.backing.open({ endedMax: 3, endedMaxAgeMs: 3_600_000, refsMaxAgeMs: 86_400_000 });
    await ctx.store.load();
    const live = makeSession({ createdAt: T0 - 10 * 86_400_000 });
    await ctx.store.append([openRecord(live)]);
    const ended: Session[] = [];
    for (let i = 0; i < 6; i++) {
      const s = makeSession();
      ended.push(s);
      // i = 0 ended two hours before "now": too old; i = 1..5: recent, but only 3 are kept.
      const at = i === 0 ? T0 - 7_200_000 : T0 - 60_000 + i;
      await ctx.store.append([
        openRecord(s),
        { t: 'end', id: s.id, state: 'TERMINATED', cause: 'admin', at, used: 0, bytes: 0 },
      ]);
    }
    await ctx.store.append([
      {
        t: 'topup',
        id: live.id,
        add: 1n,
        keys: ['idem:old'],
        at: T0 - 2 * 86_400_000,
        payment: { method: 'x', reference: 'old', amount: 1n, asset: 'A', at: T0 - 2 * 86_400_000 },
      },
    ]);
    await ctx.store.compact(T0);
    const loaded = await reopen(ctx, { endedMax: 3, endedMaxAgeMs: 3_600_000, refsMaxAgeMs: 86_400_000 });
    assert.ok(loaded.sessions.has(live.id), 'a live session is never dropped, however old');
    assert.equal(
      [...loaded.sessions.keys()].filter((id) => id !== live.id).sort(),
      ended
        .slice(3)
        .map((s) => s.id)
        .sort(),
    );
    assert.not.ok(loaded.refs.has('idem:old'));
    assert.not.ok(loaded.refs.has('ref:x:old'));
    assert.ok(
      loaded.refs.has(`ref:grant:${ended[5]!.payments[0]!.reference}`),
      'recent keys stay even when their session is dropped',
    );
    assert.ok(loaded.refs.has(`ref:grant:${ended[0]!.payments[0]!.reference}`), 'keys outlive their ended session');
  });

  it('append after close is refused with a code', async (ctx) => {
    await ctx.store.load();
    await ctx.store.close();
    await ctx.store.close();
    try {
      await ctx.store.append([openRecord(makeSession())]);
      assert.unreachable('append after close succeeded');
    } catch (err) {
      assert.ok(isSluiceError(err, 'ERR_STORE_CLOSED'), String(err));
    }
  });

  it.run();
}
