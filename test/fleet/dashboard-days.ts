/**
 * What the dashboard's day-and-year tests share: a day in ms, a page holding every row, the methods they pay with, and
 * when the tables an offset's fill writes were last analyzed.
 */
import type { Db } from '../../src/fleet/db/index.ts';

export const DAY = 86_400_000;

/** One page of every row (the tests compare whole tables). */
export const ALL = { page: 1, size: 1_000_000, offset: 0 };

/** The payment methods and assets of the tests' sales, one a router in turn. */
export const METHODS = [
  ['x402', 'USDC'],
  ['cashu', 'sat'],
  ['voucher', 'EUR'],
] as const;

/**
 * The last manual ANALYZE of each table an offset's fill writes, by table name (autovacuum's own is last_autoanalyze,
 * apart); the statistics snapshot cleared first, so a second read in one session sees what the backends reported since.
 */
export function lastAnalyzed(db: Db): Promise<Array<{ relname: string; at: string | null }>> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_stat_clear_snapshot()');
    return tx.query<{ relname: string; at: string | null }>(
      `SELECT relname, last_analyze::text AS at FROM pg_stat_user_tables
       WHERE relname IN ('revenue_offsets', 'revenue_offset_days', 'revenue_totals_days', 'revenue_totals_months')
       ORDER BY relname`,
    );
  });
}
