// The year bench's venue and alert history (bench/lib/fleet-year.ts): what the Venues and Alerts pages read after a
// year, made with generate_series in PostgreSQL 15 the way the lease service and the alerts write them.
//
// Venues: `venues` venues of 10 routers each (r0001–r0010 the first, …). Each router sells `perRouterDay` venue
// sessions a day, spread evenly over the year (the bench's default 288: a sale of each of its 3 methods every quarter
// hour, the least the year's revenue roll-ups above say each router sold); a device comes back (a venue's devices
// are a fifth of its sessions: a guest's phone buys again on later days). A session moves 0–3 times (1.5 on average:
// lobby, room, restaurant), each move a row of venue_moves, one in five an expiry whose overlap was charged; the
// lease's holder and `since` are its last move's. The last hour's sessions are held, the rest ended.
//
// Alerts: each of `routers` routers turns red and clears once a day (a flaky uplink) and shows a session gap once a
// week, raised and cleared, each event sent by webhook and mail (one in fifty mails given up): 83,400 events and
// 166,800 sendings for 100 routers.
import type { Db } from '../../src/fleet/db/index.ts';

export const VENUE_ROUTERS = 10;

const router = (n: string) => `'r' || lpad((${n})::text, 4, '0')`;

/** Fills venue_leases and venue_moves; returns how many of each. */
export async function fillVenueYear(
  db: Db,
  venues: number,
  perRouterDay: number,
): Promise<{ leases: number; moves: number }> {
  const perVenue = VENUE_ROUTERS * perRouterDay * 365;
  const devices = Math.max(1, Math.floor(perVenue / 5));
  for (let v = 1; v <= venues; v++) {
    const first = (v - 1) * VENUE_ROUTERS + 1;
    // One statement per venue: its sessions once, their leases and their moves from them. The moves' foreign key is
    // not checked (session_replication_role replica: the bench's user owns the cluster): they are made from the very
    // rows of the leases, and the check would take most of the fill's time.
    await db.exec(`SET session_replication_role = replica;

      WITH s AS MATERIALIZED (
        SELECT i, (i::bigint * 7919) % 4 AS moves, i % ${VENUE_ROUTERS} AS seller,
          now() - interval '365 days' + i * (interval '365 days' / ${perVenue}) AS sold_at,
          '02:' || lpad(to_hex(${v}), 2, '0') || ':' || lpad(to_hex((d >> 24) & 255), 2, '0') || ':' ||
            lpad(to_hex((d >> 16) & 255), 2, '0') || ':' || lpad(to_hex((d >> 8) & 255), 2, '0') || ':' ||
            lpad(to_hex(d & 255), 2, '0') AS mac,
          CASE WHEN i % 3 = 0 THEN 'seconds' ELSE 'bytes' END AS metric,
          CASE WHEN i % 3 = 0 THEN 3600 ELSE 1000000000 END AS allotment
        FROM generate_series(0, ${perVenue - 1}) i, LATERAL (SELECT (i::bigint * 2654435761) % ${devices} AS d) device
      ), leases AS (
        INSERT INTO venue_leases (id, venue, mac, state, holder, holder_session, epoch, since, metric, allotment, used,
          remaining, bytes, reported_at, renewed_at, ended_at, sold, holder_ttl_ms)
        SELECT ${router(`${first} + s.seller`)} || '/s' || s.i, 'venue-${v}',
          s.mac,
          CASE WHEN s.sold_at > now() - interval '1 hour' THEN 'held' ELSE 'ended' END,
          ${router(`${first} + (s.seller + 3 * s.moves) % ${VENUE_ROUTERS}`)}, 's' || s.i, 1 + s.moves,
          s.sold_at + s.moves * interval '10 minutes', s.metric, s.allotment, s.allotment / 2, s.allotment / 2,
          400000000, s.sold_at + interval '50 minutes', s.sold_at + interval '50 minutes',
          CASE WHEN s.sold_at > now() - interval '1 hour' THEN NULL ELSE s.sold_at + interval '1 hour' END,
          s.allotment, 120000
        FROM s
      )
      INSERT INTO venue_moves (lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used,
        opened_at, overlap, charged, charged_at, charge_epoch)
      SELECT ${router(`${first} + s.seller`)} || '/s' || s.i, 1 + e, 'venue-${v}', s.mac,
        ${router(`${first} + (s.seller + 3 * (e - 1)) % ${VENUE_ROUTERS}`)},
        ${router(`${first} + (s.seller + 3 * e) % ${VENUE_ROUTERS}`)}, s.sold_at + e * interval '10 minutes',
        CASE WHEN (s.i + e) % 5 = 0 THEN 'expired' ELSE 'released' END, s.metric,
        s.allotment - e * s.allotment / 8, e * s.allotment / 8, s.sold_at + e * interval '10 minutes' + interval '2 s',
        CASE WHEN (s.i + e) % 5 = 0 THEN 1000 ELSE 0 END, CASE WHEN (s.i + e) % 5 = 0 THEN 1000 END,
        CASE WHEN (s.i + e) % 5 = 0 THEN s.sold_at + e * interval '10 minutes' + interval '5 s' END,
        CASE WHEN (s.i + e) % 5 = 0 THEN 1 + e END
      FROM s, generate_series(1, s.moves) e;
      RESET session_replication_role`);
  }
  // A few routers broke a rule now and then: the Venues page's second table.
  await db.exec(`
    INSERT INTO venue_breaches (router, rule, venue, detail, count, first_at, last_at)
    SELECT ${router('r')}, rule, 'venue-' || (1 + (r - 1) / ${VENUE_ROUTERS}), 'bench', 1 + r * 3,
      now() - interval '300 days', now() - r * interval '1 hour'
    FROM generate_series(1, ${venues * VENUE_ROUTERS}, 3) r, (VALUES ('unasked'), ('above')) b(rule)`);
  const [n] = await db.query<{ l: string; m: string }>(
    'SELECT (SELECT count(*) FROM venue_leases)::text AS l, (SELECT count(*) FROM venue_moves)::text AS m',
  );
  return { leases: Number(n!.l), moves: Number(n!.m) };
}

/** Fills the alerts' events, sendings and states; returns how many events. */
export async function fillAlertYear(db: Db, routers: number): Promise<number> {
  await db.exec(`
    INSERT INTO dashboard_alert_events (at, router, kind, raised, detail)
    SELECT at, ${router('r')}, kind, raised, CASE WHEN raised THEN 'bench: raised' ELSE 'bench: cleared' END
    FROM (
      SELECT r, 'red' AS kind, now() - interval '365 days' + d * interval '1 day' + r * interval '13 minutes'
          + CASE WHEN c THEN interval '20 minutes' ELSE interval '0' END AS at, NOT c AS raised
        FROM generate_series(1, ${routers}) r, generate_series(0, 364) d, (VALUES (false), (true)) x(c)
      UNION ALL
      SELECT r, 'gap', now() - interval '365 days' + w * interval '7 days' + r * interval '17 minutes'
          + CASE WHEN c THEN interval '1 hour' ELSE interval '0' END, NOT c
        FROM generate_series(1, ${routers}) r, generate_series(0, 51) w, (VALUES (false), (true)) x(c)
    ) e ORDER BY at;
    INSERT INTO dashboard_alert_deliveries (event_id, channel, target, attempts, next_at, sent_at, last_error,
      failed_at)
    SELECT e.id, c.channel, c.target, CASE WHEN c.channel = 'mail' AND e.id % 50 = 0 THEN 12 ELSE 1 END,
      e.at + interval '1 s',
      CASE WHEN c.channel = 'mail' AND e.id % 50 = 0 THEN NULL ELSE e.at + interval '1 s' END,
      CASE WHEN c.channel = 'mail' AND e.id % 50 = 0 THEN 'bench: refused' END,
      CASE WHEN c.channel = 'mail' AND e.id % 50 = 0 THEN e.at + interval '1 day' END
    FROM dashboard_alert_events e,
      (VALUES ('webhook', 'https://ops.example/hook'), ('mail', 'ops@example.org')) c(channel, target);
    INSERT INTO dashboard_alert_states (router, kind, active, detail, changed_at)
    SELECT DISTINCT ON (router, kind) router, kind, raised, detail, at FROM dashboard_alert_events
    ORDER BY router, kind, at DESC;`);
  const [n] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM dashboard_alert_events');
  return Number(n!.n);
}
