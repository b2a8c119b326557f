// tier: fast
/**
 * Speed tiers kept through restarts: a session's rates are part of its journaled state. A sale journals its
 * plan's rates (or a voucher grant's own); setRates journals a live change before anyone hears of it; a restart reads
 * both back; a journal written before sessions carried rates still reads, each such session getting its plan's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import type { SessionRates } from '../../src/sessions/model.ts';
import { decodeRecord, encodeLine } from '../../src/sessions/journal-codec.ts';
import { encodeJsonLine } from '../../src/storage/index.ts';
import { tempDirs } from '../helpers/temp.ts';
import { CountingStore, mac, payment, setup } from './helpers.ts';

const tempDir = tempDirs('sluice-rates-', test.after);
const journalFile = (dir: string): string =>
  join(
    dir,
    readdirSync(dir).find((n) => /^sessions\.\d+\.journal$/.test(n))!,
  );

const SLOW: SessionRates = { downBps: 2_000_000, upBps: 1_000_000 };
const planRates =
  (tiers: Record<string, SessionRates>) =>
  (plan: string): SessionRates | null =>
    tiers[plan] ?? null;

async function open(dir: string, tiers: Record<string, SessionRates>): Promise<SessionManager> {
  return SessionManager.open({ store: new JournalStore({ dir }), planRates: planRates(tiers) });
}

test(
  "a sale journals its plan's rates: a restart keeps them " + "although the plan's rates changed since (a reload)",
  async () => {
    const dir = tempDir();
    const m = await open(dir, { slow: SLOW });
    const { session } = await m.activate({
      mac: mac(1),
      plan: 'slow',
      metric: 'seconds',
      allotment: 600n,
      payment: payment(),
    });
    const { session: free } = await m.activate({
      mac: mac(2),
      plan: 'open',
      metric: 'seconds',
      allotment: 600n,
      payment: payment(),
    });
    assert.equal(session.rates, SLOW);
    assert.equal(free.rates, { downBps: null, upBps: null }, 'a plan without rates: not limited');
    await m.close();
    const again = await open(dir, { slow: { downBps: 9_000_000, upBps: null }, open: SLOW });
    assert.equal(again.get(session.id)!.rates, SLOW, 'what was sold, not the plan as it is now');
    assert.equal(again.get(free.id)!.rates, { downBps: null, upBps: null });
    await again.close();
  },
);

test("a grant's own rates (a RADIUS voucher's) win over its plan's and are journaled", async () => {
  const dir = tempDir();
  const m = await open(dir, { slow: SLOW });
  const own = { downBps: 4_000_000, upBps: null };
  const { session } = await m.activate({
    mac: mac(3),
    plan: 'slow',
    metric: 'bytes',
    allotment: 10n ** 9n,
    payment: payment(),
    rates: own,
  });
  assert.equal(session.rates, own);
  await m.close();
  const again = await open(dir, {});
  assert.equal(again.get(session.id)!.rates, own);
  await again.close();
});

test(
  'setRates: on flash before the `rates` event and the ' + 'reply; a restart (no clean close) has the new rates',
  async () => {
    const store = new CountingStore();
    const { manager } = await setup({ store, planRates: planRates({ slow: SLOW }) });
    const { session } = await manager.activate({
      mac: mac(4),
      plan: 'slow',
      metric: 'seconds',
      allotment: 600n,
      payment: payment(),
    });
    const heard: Array<SessionRates | undefined> = [];
    manager.on('rates', (s) => heard.push(s.rates));
    store.hold = true;
    let done = false;
    const change = manager.setRates(session.id, { downBps: 8_000_000, upBps: null }).then((s) => {
      done = true;
      return s;
    });
    await new Promise((r) => setImmediate(r));
    const written = store.appends.at(-1)!;
    assert.equal(
      written.map((r) => (r.t === 'rates' ? [r.t, r.id, r.rates] : [r.t])),
      [['rates', session.id, { downBps: 8_000_000, upBps: null }]],
    );
    assert.equal(heard, [], 'nobody hears of new rates before their record is written');
    assert.not.ok(done);
    assert.equal(manager.get(session.id)!.rates, SLOW, 'not applied before it is written');
    store.release();
    const view = await change;
    assert.equal(view.rates, { downBps: 8_000_000, upBps: null });
    assert.equal(heard, [{ downBps: 8_000_000, upBps: null }]);

    const dir = tempDir();
    const m = await open(dir, { slow: SLOW });
    const { session: s2 } = await m.activate({
      mac: mac(5),
      plan: 'slow',
      metric: 'seconds',
      allotment: 600n,
      payment: payment(),
    });
    await m.setRates(s2.id, { downBps: null, upBps: 512_000 });
    // A second manager on the same directory, the first never closed: what a kill -9 leaves.
    const after = await open(dir, { slow: SLOW });
    assert.equal(after.get(s2.id)!.rates, { downBps: null, upBps: 512_000 });
    await after.close();
    await m.close();
  },
);

test('setRates refuses an ended or unknown session and what are not rates; nothing is written', async () => {
  const store = new CountingStore();
  const { manager } = await setup({ store });
  const { session } = await manager.activate({ mac: mac(6), metric: 'seconds', allotment: 600n, payment: payment() });
  const before = store.appends.length;
  for (const bad of [
    { downBps: 0, upBps: null },
    { downBps: 1.5, upBps: null },
    { downBps: '8mbit', upBps: null },
    null,
  ]) {
    await manager.setRates(session.id, bad as unknown as SessionRates).then(
      () => assert.unreachable('accepted'),
      (e: { code?: string }) => assert.is(e.code, 'ERR_INVALID_ARGUMENT'),
    );
  }
  await manager.end(session.id, 'admin');
  const written = store.appends.length;
  await manager.setRates(session.id, SLOW).then(
    () => assert.unreachable('accepted'),
    (e: { code?: string }) => assert.is(e.code, 'ERR_SESSION_NOT_FOUND'),
  );
  await manager.setRates('ffffffffffffffff', SLOW).then(
    () => assert.unreachable('accepted'),
    (e: { code?: string }) => assert.is(e.code, 'ERR_SESSION_NOT_FOUND'),
  );
  assert.is(written, before + 1, 'only the end record');
  assert.is(store.appends.length, written);
});

test(
  'old format: a journal written before sessions carried ' + "rates reads; its live sessions get their plan's rates",
  async () => {
    const dir = tempDir();
    const store = new JournalStore({ dir });
    await store.load();
    await store.close();
    // Records exactly as a daemon before rates wrote them (no `rt`, no `rates` records).
    const old = (id: string, m: string, plan: string | null) => ({
      t: 'open',
      s: {
        id,
        mac: m,
        ip: null,
        user: null,
        plan,
        metric: 'seconds',
        allotment: '600',
        used: '0',
        bytes: '0',
        createdAt: Date.now(),
        startedAt: Date.now(),
        expiresAt: Date.now() + 600_000,
        endedAt: null,
        state: 'ACTIVE',
        endCause: null,
        payments: [{ method: 'grant', reference: `g-${id}`, amount: '0', asset: '', at: Date.now() }],
      },
      keys: [`ref:grant:g-${id}`],
    });
    appendFileSync(
      journalFile(dir),
      [
        encodeJsonLine(JSON.stringify({ ...old('00000000000000a1', mac(7), 'slow'), n: 1 })),
        encodeJsonLine(JSON.stringify({ ...old('00000000000000a2', mac(8), null), n: 2 })),
      ].join(''),
    );
    const m = await open(dir, { slow: SLOW });
    assert.equal(m.recovery!.warnings, [], 'read without complaint');
    assert.equal(m.get('00000000000000a1')!.rates, SLOW, "its plan's, as the gate looked them up before");
    assert.equal(m.get('00000000000000a2')!.rates, { downBps: null, upBps: null }, 'no plan: not limited');
    // A change of an old session is journaled like any other and wins at the next start.
    await m.setRates('00000000000000a1', { downBps: 6_000_000, upBps: null });
    await m.close();
    const again = await open(dir, { slow: SLOW });
    assert.equal(again.get('00000000000000a1')!.rates, { downBps: 6_000_000, upBps: null });
    await again.close();
    assert.match(readFileSync(journalFile(dir), 'utf8'), /"t":"rates","id":"00000000000000a1","rt":\[6000000,null\]/);
  },
);

test('codec: rates round-trip in open and rates records; a bad rate is a damaged record', () => {
  const line = { t: 'rates' as const, id: 'abcdefabcdefabcd', rates: { downBps: 2_000_000, upBps: null }, at: 5 };
  const json = JSON.parse(encodeLine(line).slice(9));
  assert.equal(json, { t: 'rates', id: 'abcdefabcdefabcd', rt: [2_000_000, null], at: 5 });
  assert.equal(decodeRecord(json), { ok: true, value: line });
  for (const rt of [[0, null], [1.5, null], ['2mbit', null], [null], null]) {
    assert.not.ok(decodeRecord({ ...json, rt }).ok, JSON.stringify(rt));
  }
});

test.run();
