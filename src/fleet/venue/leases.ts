/**
 * The venue lease, as transactions on its row (docs/roaming.md): who holds a venue session, what a claim by another
 * router of the venue does to it, how a release or an expiry moves it. Every change locks the row first
 * (SELECT … FOR UPDATE), so two claims, a claim and a report, or two fleet processes never both move one lease:
 * PostgreSQL decides, sluice adds no protocol of its own.
 */
import type { Sql } from '../db/index.ts';

/** What is left of a session, as its holder says (a report, or its reply to a release). Counts as decimal text. */
export interface Figures {
  metric: 'bytes' | 'seconds';
  allotment: string;
  used: string;
  remaining: string;
  bytes: string;
  expiresAt: number | null;
  rateDown: number | null;
  rateUp: number | null;
  devices: number;
  user: string | null;
  plan: string | null;
  at: number;
}

/**
 * A lease row: who holds the session and since when, with what is left as its holder last said. `allotment` and
 * `used` are the holder's own session's (what the lease gave it and its top-ups; what it used of that); `sold` what
 * the venue session was bought for all told, the ceiling of every figure a holder gives.
 */
export interface Lease extends Omit<Figures, 'at'> {
  id: string;
  sold: string;
  venue: string;
  mac: string;
  state: 'held' | 'releasing' | 'moving' | 'ended';
  holder: string;
  holderSession: string | null;
  epoch: number;
  since: number;
  target: string | null;
  requestedAt: number | null;
  reportedAt: number;
  renewedAt: number;
  /** The TTL the holder declared with its last renewal (its kernel's), null when none. */
  holderTtlMs: number | null;
}

const COLUMNS = `id, venue, mac, state, holder, holder_session, epoch,
  (extract(epoch FROM since) * 1000)::float8 AS since, target,
  (extract(epoch FROM requested_at) * 1000)::float8 AS requested_at, metric, allotment::text, used::text,
  remaining::text, sold::text, bytes::text, (extract(epoch FROM expires_at) * 1000)::float8 AS expires_at,
  rate_down, rate_up,
  devices, user_name, plan, (extract(epoch FROM reported_at) * 1000)::float8 AS reported_at,
  (extract(epoch FROM renewed_at) * 1000)::float8 AS renewed_at, holder_ttl_ms`;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toLease(r: Record<string, unknown>): Lease {
  return {
    id: String(r['id']),
    venue: String(r['venue']),
    mac: String(r['mac']),
    state: r['state'] as Lease['state'],
    holder: String(r['holder']),
    holderSession: (r['holder_session'] as string | null) ?? null,
    epoch: Number(r['epoch']),
    since: Number(r['since']),
    target: (r['target'] as string | null) ?? null,
    requestedAt: num(r['requested_at']),
    metric: r['metric'] as Lease['metric'],
    allotment: String(r['allotment']),
    used: String(r['used']),
    remaining: String(r['remaining']),
    sold: String(r['sold']),
    bytes: String(r['bytes']),
    expiresAt: num(r['expires_at']),
    rateDown: num(r['rate_down']),
    rateUp: num(r['rate_up']),
    devices: Number(r['devices']),
    user: (r['user_name'] as string | null) ?? null,
    plan: (r['plan'] as string | null) ?? null,
    reportedAt: Number(r['reported_at']),
    renewedAt: Number(r['renewed_at']),
    holderTtlMs: num(r['holder_ttl_ms']),
  };
}

export const ms = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** What the fleet does about a claim (decided under the row's lock). */
export type ClaimDecision =
  | { kind: 'none' }
  /** The claimer holds it already (it lost the session: a restart) or it is being opened there. */
  | { kind: 'open'; lease: Lease }
  /** Ask the holder to release it to the claimer. */
  | { kind: 'release'; lease: Lease }
  /** Held by another router that is busy with another claim. */
  | { kind: 'held'; lease: Lease };

export interface ClaimOptions {
  now: number;
  /** A holder not heard for this long has lost its lease. */
  ttlMs: number;
  /** A release sent this recently is not sent again. */
  resendMs: number;
  /**
   * The claimer asks only whether the lease is still its own (a restarted holder, before it lets the device through
   * again: upstream/venue-lease.ts): nothing moves, nothing is released; its own lease is renewed.
   */
  own?: boolean;
}

/**
 * A claim by `router` for `mac` in `venue`. The MAC's live lease decides (registerSale keeps one per device and venue;
 * of older rows the first registered, never one a later sale dated itself ahead into): none → none; moving to the
 * claimer or held by it → open (again: the open is idempotent); held by another → release (the row says releasing,
 * target the claimer); held by a holder whose lease expired → moved now with its last figures → open.
 */
export async function claim(
  db: { transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> },
  venue: string,
  router: string,
  mac: string,
  o: ClaimOptions,
): Promise<ClaimDecision> {
  return db.transaction(async (tx) => {
    const rows = await tx.query(
      `SELECT ${COLUMNS} FROM venue_leases WHERE venue = $1 AND mac = $2 AND state <> 'ended'
       ORDER BY since, id LIMIT 1 FOR UPDATE`,
      [venue, mac],
    );
    if (rows.length === 0) return { kind: 'none' };
    const lease = toLease(rows[0]!);
    if (o.own === true && (lease.holder !== router || lease.state === 'moving')) return { kind: 'held', lease };
    if (lease.state === 'moving') return lease.target === router ? { kind: 'open', lease } : { kind: 'held', lease };
    // The holder asking about its own lease is heard as its status is (a restarted holder confirms its lease so).
    if (lease.holder === router) {
      await tx.query(`UPDATE venue_leases SET renewed_at = $2 WHERE id = $1`, [lease.id, ms(o.now)]);
      return { kind: 'open', lease: { ...lease, renewedAt: o.now } };
    }
    // A holder is believed about itself only: its kernel passes the device for as long as it declared, so the lease
    // moves only after the longer of that and the fleet's own TTL, never while the device may still pass there.
    const expired = o.now - lease.renewedAt > Math.max(o.ttlMs, lease.holderTtlMs ?? 0);
    if (expired) return { kind: 'open', lease: await move(tx, lease, router, null, 'expired', o.now) };
    if (lease.state === 'releasing' && lease.target !== router) return { kind: 'held', lease };
    if (lease.state === 'releasing' && lease.requestedAt !== null && o.now - lease.requestedAt < o.resendMs)
      return { kind: 'held', lease };
    await tx.query(`UPDATE venue_leases SET state = 'releasing', target = $2, requested_at = $3 WHERE id = $1`, [
      lease.id,
      router,
      ms(o.now),
    ]);
    return { kind: 'release', lease: { ...lease, state: 'releasing', target: router, requestedAt: o.now } };
  });
}

/**
 * Moves a lease to `to` (in the caller's transaction, the row locked): epoch + 1, the figures given (the holder's
 * release, capped to the lease) or its last report's (an expired holder: a time session's remainder counted down to
 * now), recorded in venue_moves. The new holder's session is given what was left: its allotment, nothing used yet. The
 * row says moving until the new holder confirms its open.
 */
async function move(
  tx: Sql,
  lease: Lease,
  to: string,
  f: Figures | null,
  how: 'released' | 'expired',
  now: number,
): Promise<Lease> {
  const figures: Figures = f ?? countedDown(lease, now);
  const epoch = lease.epoch + 1;
  // The new holder's TTL is the one its newest status declared, so the lease expires there no sooner than its kernel
  // lets the device go.
  const [moved] = await tx.query<{ holder_ttl_ms: string | null }>(
    `UPDATE venue_leases SET state = 'moving', holder = $2, holder_session = NULL, epoch = $3, since = $4, target = $2,
       requested_at = $4, allotment = $5, used = $6, remaining = $7, bytes = $8, expires_at = $9, rate_down = $10,
       rate_up = $11, devices = $12, reported_at = $13, renewed_at = $4,
       holder_ttl_ms = (SELECT ttl_ms FROM venue_holders WHERE router = $2)
     WHERE id = $1 RETURNING holder_ttl_ms`,
    [
      lease.id,
      to,
      epoch,
      ms(now),
      figures.remaining,
      '0',
      figures.remaining,
      figures.bytes,
      ms(figures.expiresAt),
      figures.rateDown,
      figures.rateUp,
      figures.devices,
      ms(figures.at),
    ],
  );
  await tx.query(
    `INSERT INTO venue_moves (lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used,
       from_session)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`,
    [
      lease.id,
      epoch,
      lease.venue,
      lease.mac,
      lease.holder,
      to,
      ms(now),
      how,
      lease.metric,
      figures.remaining,
      figures.used,
      lease.holderSession,
    ],
  );
  return {
    ...lease,
    state: 'moving',
    holder: to,
    holderSession: null,
    epoch,
    since: now,
    target: to,
    requestedAt: now,
    allotment: figures.remaining,
    used: '0',
    remaining: figures.remaining,
    bytes: figures.bytes,
    expiresAt: figures.expiresAt,
    rateDown: figures.rateDown,
    rateUp: figures.rateUp,
    devices: figures.devices,
    reportedAt: figures.at,
    renewedAt: now,
    holderTtlMs: num(moved?.holder_ttl_ms ?? null),
  };
}

/** A lease's last figures as of `now`: a time session's remainder less the seconds since they were reported. */
function countedDown(lease: Lease, now: number): Figures {
  let used = BigInt(lease.used);
  let remaining = BigInt(lease.remaining);
  if (lease.metric === 'seconds') {
    const passed = BigInt(Math.max(0, Math.floor((now - lease.reportedAt) / 1000)));
    const spent = passed > remaining ? remaining : passed;
    used += spent;
    remaining -= spent;
  }
  return {
    metric: lease.metric,
    allotment: lease.allotment,
    used: used.toString(),
    remaining: remaining.toString(),
    bytes: lease.bytes,
    expiresAt: lease.expiresAt,
    rateDown: lease.rateDown,
    rateUp: lease.rateUp,
    devices: lease.devices,
    user: lease.user,
    plan: lease.plan,
    at: now,
  };
}

/** What a release reply did: moved (its figures `capped` to the lease's), or nothing (why). */
export type Release =
  | { kind: 'moved'; lease: Lease; capped: boolean }
  /** `router` does not hold the lease at that epoch: a reply it was not asked for. */
  | { kind: 'not-holder' }
  /** Answered already, or the lease is not being released (a late repeat). */
  | { kind: 'stale' };

const big = (v: string): bigint => BigInt(v);
const min = (a: string, b: string): string => (big(a) < big(b) ? a : b);

/**
 * `router` released the lease (its reply to venue_release): moved to the target, if `router` is its holder at `epoch`.
 * Believed only within the lease: never more left than its last report (and top-ups) said, never a larger allotment
 * than the lease gave the holder, never less used than it reported.
 */
export async function released(
  db: { transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> },
  router: string,
  leaseId: string,
  epoch: number,
  f: Figures,
  now: number,
): Promise<Release> {
  return db.transaction(async (tx) => {
    const rows = await tx.query(`SELECT ${COLUMNS} FROM venue_leases WHERE id = $1 FOR UPDATE`, [leaseId]);
    const lease = rows[0] && toLease(rows[0]);
    if (!lease || lease.holder !== router || lease.epoch !== epoch) return { kind: 'not-holder' };
    if (lease.state !== 'releasing' || lease.target === null) return { kind: 'stale' };
    const capped: Figures = {
      ...f,
      metric: lease.metric,
      remaining: min(min(f.remaining, lease.remaining), lease.sold),
      allotment: min(f.allotment, lease.allotment),
      used: big(f.used) < big(lease.used) ? lease.used : f.used,
    };
    const over = capped.remaining !== f.remaining || capped.allotment !== f.allotment || f.metric !== lease.metric;
    return { kind: 'moved', lease: await move(tx, lease, lease.target, capped, 'released', now), capped: over };
  });
}

/**
 * The holder (`router` at `epoch`) refused to release (the device is still there) or no longer has the session: back
 * to held, or ended. The claimer it was released to, or null when `router` is not the holder asked.
 */
export async function notReleased(
  db: Sql,
  router: string,
  leaseId: string,
  epoch: number,
  gone: boolean,
  now: number,
): Promise<{ target: string; mac: string; venue: string } | null> {
  const rows = await db.query<{ target: string; mac: string; venue: string }>(
    `WITH old AS (SELECT id, target FROM venue_leases WHERE id = $1 AND epoch = $2 AND holder = $4
       AND state = 'releasing' FOR UPDATE)
     UPDATE venue_leases l SET ${
       gone ? `state = 'ended', ended_at = $3, target = NULL` : `state = 'held', target = NULL, requested_at = NULL`
     } FROM old WHERE l.id = old.id AND $3::timestamptz IS NOT NULL
     RETURNING old.target, l.mac, l.venue`,
    [leaseId, epoch, ms(now), router],
  );
  return rows[0] ?? null;
}

/** Whether `router` holds the lease at `epoch`. */
export async function holdsAt(db: Sql, router: string, leaseId: string, epoch: number): Promise<boolean> {
  const rows = await db.query('SELECT 1 FROM venue_leases WHERE id = $1 AND holder = $2 AND epoch = $3', [
    leaseId,
    router,
    epoch,
  ]);
  return rows.length > 0;
}

/** The new holder opened its session (its reply to venue_open, or its `started`): held there. */
export async function opened(
  db: Sql,
  leaseId: string,
  epoch: number,
  router: string,
  sessionId: string,
): Promise<void> {
  await db.query(
    `UPDATE venue_leases SET state = 'held', holder_session = $4, target = NULL
     WHERE id = $1 AND epoch = $2 AND holder = $3 AND state IN ('moving', 'held')`,
    [leaseId, epoch, router, sessionId],
  );
  await db.query(`UPDATE venue_moves SET opened_at = coalesce(opened_at, now()) WHERE lease_id = $1 AND epoch = $2`, [
    leaseId,
    epoch,
  ]);
}
