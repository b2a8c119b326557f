import { FLEET_MIGRATIONS, migrate, openPostgres } from './src/fleet/db/index.ts';
import * as store from './src/fleet/dashboard/store.ts';
import { Postgres } from './test/peers/postgres.ts';
const pg = await Postgres.create();
const db = await openPostgres({ url: pg.url() });
await migrate(db, FLEET_MIGRATIONS);
await db.query(`INSERT INTO routers (id, name, max_seq) SELECT g, 'r' || g, 0 FROM generate_series(1, 100) g`);
const t0 = Date.now();
await db.query(`INSERT INTO payments (router_id, seq, session_id, event, method, reference, amount, asset, at)
  SELECT r, n, 's' || n, 'started', 'x402', 'ref' || n, 1000 + n % 7, 'USDC',
    timestamptz '2026-11-14 00:00Z' + (n * interval '1 second' * 86400 * 14 / 10780)
  FROM generate_series(1, 100) r, generate_series(1, 10780) n`);
await db.query(`INSERT INTO revenue_days (router_id, day, method, asset, amount, payments)
  SELECT router_id, (at AT TIME ZONE 'UTC')::date, method, asset, sum(amount), count(*) FROM payments GROUP BY 1, 2, 3, 4`);
await db.query('ANALYZE');
console.log('seeded', (await db.query('SELECT count(*)::text AS n FROM payments'))[0], Date.now() - t0, 'ms');
const ask = { page: 1, size: 200, offset: 0 };
for (const zone of ['UTC', 'Europe/Berlin']) {
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const s = performance.now();
    const p = { from: '2026-11-14', to: '2026-11-28', zone };
    await store.revenue(db, p, ask);
    await store.revenueTotals(db, p, 'router', ask);
    await store.revenueTotals(db, p, 'method', ask);
    await store.revenueChart(db, p, 'router');
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  console.log(zone, 'revenue page queries (4), 14 days of 100 routers: p50', times[3]!.toFixed(0), 'ms, max', times[6]!.toFixed(0), 'ms');
}
await db.close();
await pg.close();
