/**
 * The routers that broke a rule of the lease service (docs/roaming.md, "What the fleet trusts"), named on the
 * dashboard's Venues page: what each did (its rule), how often, when first and last, with the last one's detail. What
 * was refused or capped is never believed; this is the operator's word of it. The name is the topic's router: under
 * the broker's ACL a router publishes only under its own name.
 */
import type { Sql } from '../db/index.ts';

/** The rules, as the page names them. */
export const RULES = {
  'claim-venue': 'claimed for a venue the fleet does not list it in',
  'release-not-holder': 'answered a release of a lease it did not hold at that epoch',
  'release-figures': 'released a session with more left (or a larger allotment) than its lease held',
  'report-figures': 'reported more left (or less used) than it had reported before',
  'revoke-not-sent': 'answered a revoke it was not sent',
  'revoke-figures': 'answered a revoke with more served than was left when the lease moved',
  'charge-not-sent': 'answered an overlap charge it was not sent',
  'sale-future': 'reported a sale dated ahead of the fleet clock',
  'sale-held-elsewhere': 'reported a sale for a device whose venue session is live at another router',
  'lease-ttl-above': "its lease TTL is above the fleet's: its devices wait longer to move",
} as const;

export type Rule = keyof typeof RULES;

/** Details are kept this short (a router's text, shown on a page). */
const DETAIL_MAX = 200;

/** One more breach of `rule` by `router`. */
export async function breach(
  db: Sql,
  { router, rule, venue, detail }: { router: string; rule: Rule; venue: string | null; detail: string },
): Promise<void> {
  await db.query(
    `INSERT INTO venue_breaches (router, rule, venue, detail) VALUES ($1, $2, $3, $4)
     ON CONFLICT (router, rule) DO UPDATE SET count = venue_breaches.count + 1, last_at = now(), detail = $4,
       venue = coalesce($3, venue_breaches.venue)`,
    [router, rule, venue, detail.slice(0, DETAIL_MAX)],
  );
}
