// tier: peers; needs initdb
/**
 * The fleet's schema on a real PostgreSQL 15: migrations apply once (also from two collectors starting at once), an
 * older sluice refuses a newer schema, amounts stay exact, and the gaps view shows holes in a router's series.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, SchemaTooNewError, type Db } from '../../src/fleet/db/index.ts';
import { Postgres } from '../peers/postgres.ts';

let pg: Postgres;
const dbs: Db[] = [];
test.before(async () => {
  pg = await Postgres.create();
});
test.after(async () => {
  for (const db of dbs.splice(0)) await db.close();
  await pg?.close();
});

async function fresh(name: string): Promise<Db> {
  const admin = await openPostgres({ url: pg.url(), max: 1 });
  await admin.exec(`CREATE DATABASE ${name}`);
  await admin.close();
  const db = await openPostgres({ url: pg.url(name) });
  dbs.push(db);
  return db;
}

test('migrations apply once, also from two collectors at once; a newer schema is refused', async () => {
  const db = await fresh('m1');
  const other = await openPostgres({ url: pg.url('m1') });
  dbs.push(other);
  const [a, b] = await Promise.all([migrate(db, FLEET_MIGRATIONS), migrate(other, FLEET_MIGRATIONS)]);
  assert.equal([...a, ...b].sort(), FLEET_MIGRATIONS.map((m) => m.version).sort(), 'each applied once, by one');
  assert.equal(await migrate(db, FLEET_MIGRATIONS), []);
  const dashboard = { version: 1000, name: 'dashboard', sql: 'CREATE TABLE t1000 (x int)' };
  assert.equal(await migrate(db, [...FLEET_MIGRATIONS, dashboard]), [1000]);
  assert.equal(await migrate(db, FLEET_MIGRATIONS), [], "the collector alone runs beside the dashboard's tables");
  const newer = { version: 999, name: 'a newer collector', sql: 'CREATE TABLE t999 (x int)' };
  assert.equal(await migrate(db, [...FLEET_MIGRATIONS, newer]), [999]);
  try {
    await migrate(db, FLEET_MIGRATIONS);
    assert.unreachable('an older list runs on a newer schema');
  } catch (err) {
    assert.instance(err, SchemaTooNewError);
    assert.is((err as SchemaTooNewError).code, 'ERR_FLEET_SCHEMA_TOO_NEW');
  }
});

test('amounts are exact to the smallest unit; the gaps view shows the holes of a series', async () => {
  const db = await fresh('m2');
  await migrate(db, FLEET_MIGRATIONS);
  const [{ id }] = (await db.query<{ id: number }>("INSERT INTO routers (name) VALUES ('r1') RETURNING id")) as [
    { id: number },
  ];
  const huge = '115792089237316195423570985008687907853269984665640564039457584007913129639935';
  for (const [seq, amount] of [
    [1, huge],
    [2, '1'],
  ] as const)
    await db.query(
      `INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
       VALUES ($1, $2, 's', 'started', 'x402', $3, $4, 'usdc', now())`,
      [id, seq, `ref${seq}`, amount],
    );
  const [sum] = await db.query<{ total: string }>('SELECT sum(amount)::text AS total FROM fleet_payments');
  assert.is(sum!.total, (BigInt(huge) + 1n).toString());
  for (const seq of [3, 4, 7, 8, 12])
    await db.query('INSERT INTO messages (router_id, seq, kind, at) VALUES ($1, $2, 1, now())', [id, seq]);
  const gaps = await db.query<{ router: string; from_seq: string; to_seq: string; missing: string }>(
    'SELECT router, from_seq, to_seq, missing FROM fleet_gaps ORDER BY from_seq',
  );
  assert.equal(
    gaps.map((g) => [g.router, Number(g.from_seq), Number(g.to_seq), Number(g.missing)]),
    [
      ['r1', 1, 2, 2],
      ['r1', 5, 6, 2],
      ['r1', 9, 11, 3],
    ],
  );
});

test.run();
