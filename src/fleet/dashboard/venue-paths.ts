/**
 * Customers' paths through their venue (docs/roaming.md): each venue session, where it is held now, and the routers
 * it was served at in order, from the venue lease service's views (fleet_venue_leases, fleet_venue_moves). A fleet
 * database that never ran the lease service (`sluice-fleet --venues`) has none: the page says so.
 */
import type { Sql } from '../db/index.ts';
import { InputError } from './auth.ts';
import type { Page } from './pages.ts';
import type { ScreenContext } from './screens.ts';
import { ms, relationExists } from './store.ts';
import { pageAsk, paging, type PageAsk, type Paging } from './paging.ts';
import type { Table } from './table.ts';
import { time } from './views.ts';
import { venueBreachesTable } from './venue-breaches.ts';

export interface VenueLeaseRow {
  id: string;
  venue: string;
  mac: string;
  state: string;
  holder: string;
  epoch: number;
  since_ms: number;
  metric: string;
  remaining: string;
}

export interface VenueMoveRow {
  lease_id: string;
  epoch: number;
  from_router: string;
  to_router: string;
  at_ms: number;
  how: string;
  /** What the old holder served past the figures the lease moved with, in the session's metric. */
  overlap: string;
  /** What the holder after it took off the session for that overlap; null: not yet confirmed, or not said. */
  charged: string | null;
  /** Whether the holder confirmed it took the charge (a router of an older release says so without the figure). */
  settled: boolean;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** PostgreSQL's numeric as text (whole bytes or seconds) as a bigint; anything else counts 0. */
const whole = (text: string | null): bigint => (text !== null && /^\d+$/.test(text) ? BigInt(text) : 0n);

/**
 * A session's overlaps over all its moves, in its metric, and what was charged for them: an overlap larger than what
 * was left where the lease went is charged only as far as that goes (docs/roaming.md, "The overlap charge"); one not
 * yet confirmed is pending; one confirmed without a figure (a router of an older release) is counted apart.
 */
function overlapOf(steps: readonly VenueMoveRow[]): {
  overlap: bigint;
  charged: bigint;
  pending: number;
  unsaid: number;
  /** The overlap of the moves whose charge has a figure or none yet: what `charged` is compared with. */
  known: bigint;
} {
  let overlap = 0n;
  let charged = 0n;
  let pending = 0;
  let unsaid = 0;
  let known = 0n;
  for (const m of steps) {
    overlap += whole(m.overlap);
    if (m.charged === null && m.settled) unsaid += whole(m.overlap) > 0n ? 1 : 0;
    else known += whole(m.overlap);
    if (m.charged === null && !m.settled) pending += whole(m.overlap) > 0n ? 1 : 0;
    else charged += whole(m.charged);
  }
  return { overlap, charged, pending, unsaid, known };
}
/** The venue sessions counted for the page's total before it says PostgreSQL's estimate of them all. */
const COUNTED = 10_000;
/** A venue session's moves shown in its path (its first and its newest): a device moved back and forth for days. */
const PATH_MOVES = 24;

/** One row per venue session, newest first: its path as `router → router (at, how) → …`. */
export function venuePathsTable(
  leases: readonly VenueLeaseRow[],
  moves: readonly VenueMoveRow[],
  zone: string,
  pages?: Paging,
): Table {
  const byLease = new Map<string, VenueMoveRow[]>();
  for (const m of moves) byLease.set(m.lease_id, [...(byLease.get(m.lease_id) ?? []), m]);
  return {
    id: 'paths',
    title: "Customers' paths (each venue session, the routers it was served at in order)",
    columns: [
      { key: 'venue', label: 'venue' },
      { key: 'mac', label: 'device' },
      { key: 'path', label: `path (${zone}, how it moved)` },
      { key: 'holder', label: 'held at' },
      { key: 'since', label: `since (${zone})` },
      { key: 'state', label: 'state' },
      { key: 'remaining', label: 'left at the last report', numeric: true },
      { key: 'overlap', label: 'overlap (in its unit)', numeric: true },
      { key: 'charged', label: 'overlap charged', numeric: true },
    ],
    rows: leases.map((l) => {
      const steps = (byLease.get(l.id) ?? []).sort((a, b) => a.epoch - b.epoch);
      // The lease id names the router it was sold at: `<router>/<session id>`.
      const first = steps[0]?.from_router ?? l.id.slice(0, l.id.indexOf('/'));
      const step = (m: VenueMoveRow): string => `${m.to_router} (${time(m.at_ms, zone)}, ${m.how})`;
      const shown =
        steps.length <= PATH_MOVES
          ? steps.map(step)
          : [
              ...steps.slice(0, PATH_MOVES / 2).map(step),
              `… ${steps.length - PATH_MOVES} more moves …`,
              ...steps.slice(-PATH_MOVES / 2).map(step),
            ];
      const path = [first, ...shown].join(' → ');
      const o = overlapOf(steps);
      const notes = [
        ...(o.pending > 0 ? [`${o.pending} pending`] : []),
        ...(o.unsaid > 0 ? [`${o.unsaid} taken, amount not reported`] : []),
      ];
      const charged = notes.length > 0 ? `${o.charged} (${notes.join('; ')})` : String(o.charged);
      return [
        l.venue,
        l.mac,
        path,
        l.holder,
        time(l.since_ms, zone),
        l.state,
        `${l.remaining} ${l.metric}`,
        `${o.overlap} ${l.metric}`,
        charged,
      ];
    }),
    // Amber where an overlap is not (yet) all charged: served twice and not billed for it, as far as it goes. One
    // taken without a figure is not counted against it.
    rowClass: leases.map((l) => {
      const o = overlapOf(byLease.get(l.id) ?? []);
      return o.known > o.charged ? 'warn' : undefined;
    }),
    ...(pages && { paging: pages }),
  };
}

async function reads(
  db: Sql,
  mac: string | null,
  ask: PageAsk,
): Promise<{ leases: VenueLeaseRow[]; moves: VenueMoveRow[]; total: string; about: boolean } | null> {
  if (!(await relationExists(db, 'fleet_venue_moves'))) return null;
  const where = 'WHERE $1::text IS NULL OR mac = $1';
  // Every venue session is kept: a year of a venue is millions, and counting them all took half a second each reload.
  // Past COUNTED, all of them are PostgreSQL's estimate (its statistics of the table); one device's are counted.
  const [leases, [n]] = await Promise.all([
    db.query<VenueLeaseRow>(
      `SELECT id, venue, mac, state, holder, epoch, ${ms('since')} AS since_ms, metric, remaining::text AS remaining
       FROM fleet_venue_leases ${where} ORDER BY since DESC, id LIMIT $2 OFFSET $3`,
      [mac, ask.size, ask.offset],
    ),
    db.query<{ n: string; about: boolean }>(
      `SELECT (CASE WHEN about THEN greatest(n, (SELECT reltuples::bigint FROM pg_class
           WHERE oid = 'venue_leases'::regclass)) ELSE n END)::text AS n, about
       FROM (SELECT n, $1::text IS NULL AND n > $2 AS about
         FROM (SELECT count(*) AS n FROM (SELECT 1 FROM fleet_venue_leases ${where}
           LIMIT CASE WHEN $1::text IS NULL THEN $2 + 1 END) counted) c) c`,
      [mac, COUNTED],
    ),
  ]);
  const moves = await db.query<VenueMoveRow>(
    `SELECT lease_id, epoch, from_router, to_router, ${ms('at')} AS at_ms, how, overlap::text AS overlap,
       charged::text AS charged, charged_at IS NOT NULL AS settled
     FROM fleet_venue_moves WHERE lease_id = ANY($1::text[]) ORDER BY lease_id, epoch`,
    [leases.map((l) => l.id)],
  );
  return { leases, moves, total: n?.n ?? '0', about: n?.about === true };
}

export async function venuesScreen(c: ScreenContext): Promise<Page> {
  const asked = (c.query.get('mac') ?? '').trim().toLowerCase();
  if (asked !== '' && !MAC.test(asked)) throw new InputError('mac must be a MAC address (aa:bb:cc:dd:ee:ff)');
  const ask = pageAsk(c.query, 'paths');
  const found = await reads(c.db, asked === '' ? null : asked, ask);
  const form =
    '<form method="get" action="/venues">Device <input name="mac" placeholder="aa:bb:cc:dd:ee:ff" ' +
    `value="${asked}"> <button>Show its path</button></form>`;
  if (found === null)
    return {
      title: 'Venues',
      sections: ['<p class="note">No venue lease service has run on this database (sluice-fleet --venues).</p>'],
    };
  return {
    title: 'Venues',
    refreshS: 15,
    sections: [
      form,
      `<p class="note">The venue sessions${asked === '' ? '' : ` of ${asked}`}, newest first. A session moves when ` +
        'its device reaches another router of the venue: released by the router it left, or expired (that router ' +
        'was unreachable; what it served past its last report is the overlap, charged to the session).</p>',
      venuePathsTable(found.leases, found.moves, c.zone, paging(ask, found.total, found.about)),
      ...[await venueBreachesTable(c.db, c.zone, pageAsk(c.query, 'breaches'))].filter(
        (t): t is Table => t !== null && t.rows.length > 0,
      ),
    ],
  };
}
