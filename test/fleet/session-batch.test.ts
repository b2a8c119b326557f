// tier: peers; needs initdb mosquitto
/**
 * Session messages of several routers share a transaction (src/fleet/collector/session-batch.ts; docs/fleet.md, "One
 * router cannot slow the others"): between a real mosquitto and PostgreSQL 15, 120 payments of 12 routers queued at
 * the broker while the collector was away are stored in far fewer transactions than messages (the ledger rows'
 * xmin). A batch with one poison payment (the database refuses it: XX000 from a trigger) is written again one message
 * at a time: the others stored, the poison counted once in fleet_rejects, and every one acknowledged (the next run
 * of the collector, on the same broker session, is handed only what came after).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import { collector, FakeRouter, fleetPeers, freshDb, waitFor } from './rig.ts';

const peers = fleetPeers(test);
const { open } = peers;

const count = async (db: Db, sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql))[0]?.n ?? 0);

async function routers(n: number, prefix: string): Promise<FakeRouter[]> {
  const out = await Promise.all(
    Array.from({ length: n }, (_, i) => FakeRouter.connect(`${prefix}${i}`, peers.broker.url)),
  );
  open.push(...out);
  return out;
}

test('payments of many routers queued at the broker: stored in a few transactions, each once', async () => {
  const db = await freshDb(peers.pg);
  open.push(db);
  const lines: string[] = [];
  const options = { clientId: 'batch-c', group: 'batch-g', connections: 2 };
  // The collector's broker session made, then the collector away while the routers pay.
  await (await collector(db, peers.broker.url, lines, options)).stop();
  const rs = await routers(12, 'b');
  for (let k = 0; k < 10; k++) await Promise.all(rs.map((r) => r.started(`${r.name}-${k}`, '1', `${r.name}-ref-${k}`)));
  const c = await collector(db, peers.broker.url, lines, options);
  open.push(c);
  await waitFor(
    async () => (await count(db, 'SELECT count(*)::text AS n FROM fleet_payments')) === 120,
    60_000,
    `every payment stored: ${lines.join('\n')}`,
  );
  const transactions = await count(db, 'SELECT count(DISTINCT xmin::text)::text AS n FROM messages WHERE kind = 2');
  assert.ok(transactions <= 40, `120 session messages in ${transactions} transactions`);
  assert.is(await count(db, 'SELECT sum(amount)::text AS n FROM fleet_payments'), 120, 'each payment once');
  assert.is(c.stats().stored, 120);
});

test('a poison payment in a batch: the others stored, it counted once, all acknowledged', async () => {
  const db = await freshDb(peers.pg);
  open.push(db);
  await db.exec(`
    CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.reference = 'raise-XX000' THEN RAISE EXCEPTION 'internal' USING ERRCODE = 'XX000'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER poison BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION poison();`);
  const lines: string[] = [];
  const options = { clientId: 'batch-p', group: 'batch-pg', connections: 2 };
  await (await collector(db, peers.broker.url, lines, options)).stop();
  const rs = await routers(6, 'p');
  for (let k = 0; k < 5; k++) {
    await Promise.all(rs.map((r) => r.started(`${r.name}-${k}`, '1', `${r.name}-ref-${k}`)));
    if (k === 2) await rs[0]!.started('poison', '1', 'raise-XX000');
  }
  let c = await collector(db, peers.broker.url, lines, options);
  await waitFor(
    async () => (await count(db, 'SELECT count(*)::text AS n FROM fleet_payments')) === 30,
    60_000,
    `every other payment stored: ${lines.join('\n')}`,
  );
  await waitFor(() => c.stats().rejected === 1, 30_000, 'the poison counted');
  const rejects = await db.query<{ reason: string; count: number }>(
    "SELECT reason, count FROM fleet_rejects WHERE router = 'p0'",
  );
  assert.is(rejects.length, 1, JSON.stringify(rejects));
  assert.ok(rejects[0]!.reason.includes('XX000'), rejects[0]!.reason);
  assert.is(Number(rejects[0]!.count), 1);
  assert.ok(
    lines.some((l) => l.includes('a batch of session messages could not be stored')),
    `the poison came in a batch: ${lines.join('\n')}`,
  );

  // Every message acknowledged: the next run on the same broker session is handed only the payment after them.
  await c.stop();
  await rs[1]!.started('after', '1', 'after-ref');
  c = await collector(db, peers.broker.url, lines, options);
  open.push(c);
  await waitFor(
    async () => (await count(db, "SELECT count(*)::text AS n FROM fleet_payments WHERE reference = 'after-ref'")) === 1,
    30_000,
    'the payment after the restart stored',
  );
  assert.is(c.stats().received, 1, 'nothing handed over again');
  assert.is(c.stats().rejected, 0);
});

test.run();
