/**
 * What a venue router's own messages (docs/mqtt.md: `status`, `usage`, `session`) do to the venue's leases: a status
 * renews its holds (and revokes what moved on while it was away), usage rows are its holds' reports, a sale registers
 * a lease (not dated ahead, not for a device live elsewhere), a trial is remembered for the venue, a handover's
 * session confirms its open, an end or a top-up changes the lease. Whoever breaks a rule is named (breaches.ts).
 */
import type { Inbound } from '../collector/index.ts';
import type { Db } from '../db/index.ts';
import { breach } from './breaches.ts';
import { decimal, figuresOf, sessionFields } from './figures.ts';
import * as reports from './holder-reports.ts';
import * as leases from './leases.ts';
import { staleHolds, type StaleHold } from './revokes.ts';
import { recordTrial } from './trials.ts';

/** A sale dated more than this ahead of the fleet's clock is not believed (a router's clock is NTP-set). */
const SALE_SKEW_MS = 30_000;

export interface HeardContext {
  db: Db;
  /** router → venue (parseVenues). */
  venues: ReadonlyMap<string, string>;
  now: () => number;
  /** A message refused (counted in the service's stats). */
  refused: () => void;
  /** The fleet's lease TTL (--lease-ttl). */
  ttlMs: number;
  /**
   * The routers named for a lease TTL above it, with the TTL named: once each (and again when it changes), so the
   * breach counts what a router declared, not each status.
   */
  namedTtl: Map<string, number>;
  /** Sends `router` the revoke of a hold that moved on while it was unreachable. */
  revoke: (router: string, h: StaleHold) => void;
}

export async function heardReport(c: HeardContext, m: Inbound): Promise<void> {
  const venue = c.venues.get(m.router);
  if (venue === undefined) return;
  const at = Math.min(m.at, c.now());
  if (m.kind === 'status') {
    if (!m.online) return;
    if (m.leaseTtlRefused) c.refused();
    const ttlMs = m.leaseTtlS === null ? null : m.leaseTtlS * 1000;
    await reports.renewHolder(c.db, m.router, at, ttlMs);
    // Believed (its kernel passes its devices that long), and named: its leases move later than the fleet's TTL.
    if (ttlMs !== null && ttlMs > c.ttlMs && c.namedTtl.get(m.router) !== ttlMs) {
      if (c.namedTtl.size < 10_000) c.namedTtl.set(m.router, ttlMs);
      const detail = `its lease TTL (${m.leaseTtlS} s) is above the fleet's (${c.ttlMs / 1000} s)`;
      await breach(c.db, { router: m.router, venue, rule: 'lease-ttl-above', detail });
    }
    // Back after its lease moved on (it was unreachable): it stops serving what it no longer holds.
    for (const h of await staleHolds(c.db, m.router)) c.revoke(m.router, h);
    return;
  }
  if (m.kind === 'usage') {
    for (const r of m.rows) {
      const used = decimal(r.used);
      const remaining = decimal(r.remaining);
      if (used === null || remaining === null) continue;
      const f = { used, remaining, bytes: decimal(r.bytes) ?? '0', at };
      if (await reports.report(c.db, m.router, r.id, f, c.now()))
        await breach(c.db, {
          router: m.router,
          venue,
          rule: 'report-figures',
          detail: `session ${r.id}: used ${used}, remaining ${remaining}`,
        });
    }
    return;
  }
  const s = m.session;
  if (s === null) return;
  if (m.event === 'started' && m.payment !== null) {
    // A session a handover opened (reference `<venue>/<lease id>#<epoch>/<from>`): the lease's, not a sale.
    if (m.payment.method === 'venue') {
      const ref = /^[^/]+\/([^/]+\/[0-9a-f]{16})#(\d+)\/[^/]+$/.exec(m.payment.reference);
      if (ref !== null) await leases.opened(c.db, ref[1]!, Number(ref[2]), m.router, s.id);
      return;
    }
    // A free trial is the venue's: remembered for every router's next claim, dated by its arrival here.
    if (m.payment.method === 'trial' && s.plan !== null)
      await recordTrial(c.db, { venue, mac: s.mac.toLowerCase(), plan: s.plan, router: m.router, at: c.now() });
    const f = figuresOf({ ...sessionFields(s), at: m.at });
    if (f === null) return;
    const arrived = c.now();
    // A sale the fleet cannot have heard of yet: dated ahead, it would claim a newer place than every real one.
    if (m.at > arrived + SALE_SKEW_MS) {
      c.refused();
      const ahead = Math.round((m.at - arrived) / 1000);
      return breach(c.db, {
        router: m.router,
        venue,
        rule: 'sale-future',
        detail: `session ${s.id} of ${s.mac}: ${ahead} s ahead`,
      });
    }
    const sale = await reports.registerSale(c.db, venue, m.router, s.id, s.mac.toLowerCase(), f, arrived);
    if (sale.kind === 'held-elsewhere') {
      c.refused();
      await breach(c.db, {
        router: m.router,
        venue,
        rule: 'sale-held-elsewhere',
        detail: `session ${s.id} of ${s.mac}: live at ${sale.holder}`,
      });
    }
  } else if (m.event === 'ended' && s.cause !== 'moved') {
    await reports.ended(c.db, m.router, s.id, m.at);
  } else if (m.event === 'topup' || m.event === 'rates') {
    const allotment = decimal(s.allotment);
    if (m.event === 'topup' && allotment !== null) await reports.topUp(c.db, m.router, s.id, allotment);
    await c.db.query(
      `UPDATE venue_leases SET rate_down = $3, rate_up = $4
       WHERE holder = $1 AND holder_session = $2 AND state <> 'ended'`,
      [m.router, s.id, s.rateDown, s.rateUp],
    );
  }
}
