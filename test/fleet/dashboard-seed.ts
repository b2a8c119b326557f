/**
 * A fleet database as the collector leaves it after three routers reported (rows written straight into the collector's
 * tables of src/fleet/db/schema.ts): revenue over 14 days in two assets, live sessions, a hole in one router's series,
 * one router whose connection was lost (its Last-Will).
 */
import type { Sql } from '../../src/fleet/db/index.ts';

export const ROUTERS = ['cafe-north', 'cafe-south', 'station'] as const;
export const NORTH_MACS = ['02:00:00:00:0a:01', '02:00:00:00:0a:02', '02:00:00:00:0a:03'];

const t = (ms: number): string => new Date(ms).toISOString();

export async function seed(db: Sql, now: number): Promise<void> {
  const health = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      rss_mb: 48.7,
      meter_tick_ms: 1.2,
      journal_write_failures: 0,
      journal_failing: null,
      damaged_tables: 0,
      config_problems: 0,
      ...extra,
    });
  const routers: Array<[string, boolean, string | null, number, string]> = [
    ['cafe-north', true, null, now - 20_000, health()],
    ['cafe-south', true, null, now - 10_000, health({ damaged_tables: 1 })],
    ['station', false, 'lost', now - 300_000, health({ rss_mb: 51.2 })],
  ];
  for (const [name, online, reason, last, h] of routers) {
    await db.query(
      `INSERT INTO routers (name, last_message_at, last_report_at, max_seq, online, status_reason, status_at, version,
         uptime_s, queue, health)
       VALUES ($1, $2, $2, 5, $3, $4, $2, '0.1.0', 86400, '{"pending":0,"bytes":0,"dropped":0,"expired":0}', $5)`,
      [name, t(last), online, reason, h],
    );
  }
  // What the routers' status says they sell in: the units the dashboard shows amounts in.
  const pricing = JSON.stringify([
    { id: 'time', metric: 'seconds', asset: 'USDC', currency: 'USDC', decimals: 6 },
    { id: 'data', metric: 'bytes', asset: 'sat', currency: 'sat', decimals: 0 },
  ]);
  await db.query('UPDATE routers SET pricing = $1', [pricing]);
  const id = async (name: string) =>
    Number((await db.query<{ id: number }>('SELECT id FROM routers WHERE name = $1', [name]))[0]!.id);
  // Series: north and station 1..5, south 1, 2, 5 (3 and 4 never arrived).
  for (const name of ROUTERS) {
    const seqs = name === 'cafe-south' ? [1, 2, 5] : [1, 2, 3, 4, 5];
    for (const seq of seqs)
      await db.query('INSERT INTO messages (router_id, seq, kind, at) VALUES ($1, $2, 2, $3)', [
        await id(name),
        seq,
        t(now - (10 - seq) * 60_000),
      ]);
  }
  // Revenue: 14 days, deterministic amounts; USDC (6 decimals, smallest unit) by x402, sats by cashu.
  for (let d = 0; d < 14; d++) {
    const day = new Date(now - d * 86_400_000).toISOString().slice(0, 10);
    for (const [k, name] of ROUTERS.entries()) {
      const usdc = BigInt(1_000_000 + ((d * 7 + k * 13) % 11) * 250_000) * BigInt(k + 1);
      await db.query(
        `INSERT INTO revenue_days (router_id, day, method, asset, amount, payments) VALUES ($1, $2, $3, $4, $5, $6)`,
        [await id(name), day, 'x402', 'USDC', usdc.toString(), 3 + ((d + k) % 4)],
      );
      if ((d + k) % 3 !== 0)
        await db.query(
          `INSERT INTO revenue_days (router_id, day, method, asset, amount, payments) VALUES ($1, $2, $3, $4, $5, $6)`,
          [await id(name), day, 'cashu', 'sat', String(2100 + d * 100 + k * 50), 2],
        );
    }
  }
  for (const [i, mac] of NORTH_MACS.entries()) {
    await db.query(
      `INSERT INTO sessions (router_id, id, mac, ip, plan, metric, state, allotment, used, bytes, remaining, started_at,
         expires_at, seq, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'ACTIVE', $7, $8, $9, $10, $11, $12, $13, $14)`,
      [
        await id('cafe-north'),
        `00000000000a000${i}`,
        mac,
        `10.0.0.${10 + i}`,
        i === 0 ? 'time' : 'data',
        i === 0 ? 'seconds' : 'bytes',
        i === 0 ? '3600' : '1073741824',
        i === 0 ? '1200' : String(300_000_000 * i),
        String(300_000_000 * (i + 1)),
        i === 0 ? '2400' : String(1073741824 - 300_000_000 * i),
        t(now - 1_200_000),
        i === 0 ? t(now + 2_400_000) : null,
        i + 1,
        t(now - 20_000),
      ],
    );
  }
}
