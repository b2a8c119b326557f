/**
 * The routers that broke a rule of the venue lease service (docs/roaming.md, "What the fleet trusts"), for the
 * Venues page: who, which rule, how often, first and last, and the last one's detail (fleet_venue_breaches). A
 * database whose lease service predates the table has none.
 */
import type { Sql } from '../db/index.ts';
import { ms, relationExists } from './store.ts';
import { paging, type PageAsk } from './paging.ts';
import type { Table } from './table.ts';
import { time } from './views.ts';

interface BreachRow {
  router: string;
  rule: string;
  venue: string | null;
  detail: string;
  count: string;
  first_ms: number;
  last_ms: number;
}

/** The table, most recent first (null: no lease service with breaches has run here). */
export async function venueBreachesTable(db: Sql, zone: string, ask: PageAsk): Promise<Table | null> {
  if (!(await relationExists(db, 'fleet_venue_breaches'))) return null;
  const [rows, [n]] = await Promise.all([
    db.query<BreachRow>(
      `SELECT router, rule, venue, detail, count::text AS count, ${ms('first_at')} AS first_ms,
         ${ms('last_at')} AS last_ms
       FROM fleet_venue_breaches ORDER BY last_at DESC, router, rule LIMIT $1 OFFSET $2`,
      [ask.size, ask.offset],
    ),
    db.query<{ n: string }>('SELECT count(*)::text AS n FROM fleet_venue_breaches'),
  ]);
  return {
    id: 'breaches',
    title: 'Routers that broke a rule of the venue (refused or capped, never believed)',
    columns: [
      { key: 'router', label: 'router' },
      { key: 'venue', label: 'venue' },
      { key: 'rule', label: 'rule' },
      { key: 'count', label: 'times', numeric: true },
      { key: 'first', label: `first (${zone})` },
      { key: 'last', label: `last (${zone})` },
      { key: 'detail', label: 'last detail' },
    ],
    rows: rows.map((r) => [
      r.router,
      r.venue ?? '',
      r.rule,
      r.count,
      time(r.first_ms, zone),
      time(r.last_ms, zone),
      r.detail,
    ]),
    rowClass: rows.map(() => 'bad'),
    paging: paging(ask, n?.n ?? '0'),
  };
}
