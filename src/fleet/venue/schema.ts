/**
 * The venue lease service's tables (docs/roaming.md), migrations 2000–2999 (the collector has 1–999, the dashboard
 * 1000–1999). One `venue_leases` row per venue session, changed only in transactions that lock it; `venue_moves` is
 * each session's path from router to router.
 */
import type { Migration } from '../db/index.ts';

const LEASES = `
-- One row per venue session: where it is held and what was left as of the holder's last report. id: the router and
-- local session id it was sold as ('<router>/<session id>'). state: held (the holder serves it), releasing (the
-- holder was asked to give it to \`target\`), moving (given up by the holder, to be opened at \`target\`), ended.
CREATE TABLE venue_leases (
  id text PRIMARY KEY,
  venue text NOT NULL,
  mac text NOT NULL,
  state text NOT NULL CHECK (state IN ('held', 'releasing', 'moving', 'ended')),
  holder text NOT NULL,
  holder_session text,
  epoch int NOT NULL,
  since timestamptz NOT NULL,
  target text,
  requested_at timestamptz,
  metric text NOT NULL CHECK (metric IN ('bytes', 'seconds')),
  allotment numeric NOT NULL,
  used numeric NOT NULL,
  remaining numeric NOT NULL,
  bytes numeric NOT NULL DEFAULT 0,
  expires_at timestamptz,
  rate_down bigint,
  rate_up bigint,
  devices int NOT NULL DEFAULT 1,
  user_name text,
  plan text,
  -- The \`at\` of the figures above (the holder's report or release), and when the fleet last heard the holder.
  reported_at timestamptz NOT NULL,
  renewed_at timestamptz NOT NULL,
  overlap_bytes numeric NOT NULL DEFAULT 0,
  ended_at timestamptz
);
CREATE INDEX venue_leases_live ON venue_leases (venue, mac) WHERE state <> 'ended';
CREATE INDEX venue_leases_holder ON venue_leases (holder) WHERE state <> 'ended';

-- Each move of a venue session: how (released by the holder, or expired: the holder was unreachable), with what.
CREATE TABLE venue_moves (
  lease_id text NOT NULL REFERENCES venue_leases (id),
  epoch int NOT NULL,
  venue text NOT NULL,
  mac text NOT NULL,
  from_router text NOT NULL,
  to_router text NOT NULL,
  at timestamptz NOT NULL,
  how text NOT NULL CHECK (how IN ('released', 'expired')),
  metric text NOT NULL,
  remaining numeric NOT NULL,
  used numeric NOT NULL,
  opened_at timestamptz,
  PRIMARY KEY (lease_id, epoch)
);

CREATE VIEW fleet_venue_leases AS
SELECT id, venue, mac, state, holder, holder_session, epoch, since, target, metric, allotment, used, remaining, bytes,
  expires_at, rate_down, rate_up, devices, user_name, plan, reported_at, renewed_at, overlap_bytes, ended_at
FROM venue_leases;

CREATE VIEW fleet_venue_moves AS
SELECT lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used, opened_at
FROM venue_moves;
`;

const REVOKES = `
-- A move after the holder's lease expired: the session the old holder had (revoked there once it is heard again),
-- when that was done, and the overlap it served after its last report (in the lease's metric), booked to the lease.
ALTER TABLE venue_moves ADD COLUMN from_session text, ADD COLUMN revoked_at timestamptz,
  ADD COLUMN overlap numeric NOT NULL DEFAULT 0;
CREATE OR REPLACE VIEW fleet_venue_moves AS
SELECT lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used, opened_at, from_session,
  revoked_at, overlap
FROM venue_moves;
`;

const CHARGES = `
-- The overlap of a revoke, charged to the session where the lease is now (venue_charge, a data session's bytes): when
-- that router confirmed it. NULL with an overlap: not yet charged.
ALTER TABLE venue_moves ADD COLUMN charged_at timestamptz;
CREATE OR REPLACE VIEW fleet_venue_moves AS
SELECT lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used, opened_at, from_session,
  revoked_at, overlap, charged_at
FROM venue_moves;
`;

const CHARGES_RESENT = `
-- Every overlap is charged, a time session's seconds as a data session's bytes, and resent until answered:
-- charge_epoch, the lease epoch (its holder then) it was sent to; charged, what that router said it took (NULL when it
-- said only that it had: a repeat, or its handover reply's list).
ALTER TABLE venue_moves ADD COLUMN charge_epoch int, ADD COLUMN charged numeric;
CREATE OR REPLACE VIEW fleet_venue_moves AS
SELECT lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used, opened_at, from_session,
  revoked_at, overlap, charged_at, charge_epoch, charged
FROM venue_moves;
`;

const TRUST = `
-- sold: what the venue session was bought for, all told (its sale's allotment and every top-up since): no figure a
-- holder gives is believed above it. allotment is now the holder's own session's (what the lease gave it, and its
-- top-ups), used what it used of that.
ALTER TABLE venue_leases ADD COLUMN sold numeric;
UPDATE venue_leases SET sold = allotment;
ALTER TABLE venue_leases ALTER COLUMN sold SET NOT NULL;
-- A router that broke one of the lease service's rules (a reply it was not asked for, figures above the lease, a sale
-- dated ahead or of a device held elsewhere): what it did, how often, first and last. Read by the Venues page.
CREATE TABLE venue_breaches (
  router text NOT NULL,
  rule text NOT NULL,
  venue text,
  detail text NOT NULL,
  count bigint NOT NULL DEFAULT 1,
  first_at timestamptz NOT NULL DEFAULT now(),
  last_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (router, rule)
);
CREATE OR REPLACE VIEW fleet_venue_leases AS
SELECT id, venue, mac, state, holder, holder_session, epoch, since, target, metric, allotment, used, remaining, bytes,
  expires_at, rate_down, rate_up, devices, user_name, plan, reported_at, renewed_at, overlap_bytes, ended_at, sold
FROM venue_leases;
CREATE VIEW fleet_venue_breaches AS SELECT router, rule, venue, detail, count, first_at, last_at FROM venue_breaches;
`;

/** When each device had each trial plan in a venue (trials.ts): a trial is the venue's, not each router's. */
const TRIALS = `
CREATE TABLE venue_trials (
  venue text NOT NULL,
  mac text NOT NULL,
  plan text NOT NULL,
  router text NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (venue, mac, plan)
);
CREATE INDEX venue_trials_at ON venue_trials (at);
`;

/**
 * A trial claimed and not started yet (trials.ts reserveTrial): the first router to claim a device's trial in a venue
 * holds it until `until`; another router's claim meanwhile is refused it.
 */
const TRIAL_HOLDS = `
CREATE TABLE venue_trial_holds (
  venue text NOT NULL,
  mac text NOT NULL,
  plan text NOT NULL,
  router text NOT NULL,
  at timestamptz NOT NULL,
  until timestamptz NOT NULL,
  PRIMARY KEY (venue, mac, plan)
);
`;

/**
 * The holder's declared lease TTL (its status' `lease_ttl`, with its renewal: holder-reports.ts renewHolder): how
 * long its kernel passes the device unrenewed. NULL: it declared none, the fleet's own holds. A lease is moved from
 * an unheard holder only after the longer of the two (leases.ts claim).
 */
const HOLDER_TTL = `
ALTER TABLE venue_leases ADD COLUMN holder_ttl_ms bigint;
`;

/**
 * The Venues page's order (dashboard/venue-paths.ts: newest first, then id; of one device, or all): a year of a venue's
 * sessions is millions of rows, every one kept, and without these its page sorted them all on each reload.
 */
const PATH_ORDER = `
CREATE INDEX venue_leases_since ON venue_leases (since DESC, id);
CREATE INDEX venue_leases_mac_since ON venue_leases (mac, since DESC, id);
`;

/**
 * Each venue router's lease TTL as its newest status declared it (NULL: none), whether it held a lease then or not: a
 * lease moved or sold to it takes that TTL at once (leases.ts move, holder-reports.ts registerSale), not only at its
 * next status.
 */
const HOLDERS = `
CREATE TABLE venue_holders (
  router text PRIMARY KEY,
  ttl_ms bigint,
  at timestamptz NOT NULL
);
`;

export const VENUE_MIGRATIONS: readonly Migration[] = [
  { version: 2000, name: 'venue leases', sql: LEASES },
  { version: 2001, name: 'venue revokes', sql: REVOKES },
  { version: 2002, name: 'venue charges', sql: CHARGES },
  { version: 2003, name: 'venue charges resent', sql: CHARGES_RESENT },
  { version: 2004, name: 'venue trust', sql: TRUST },
  { version: 2005, name: 'venue trials', sql: TRIALS },
  { version: 2006, name: 'venue trial holds', sql: TRIAL_HOLDS },
  { version: 2007, name: 'venue holder ttl', sql: HOLDER_TTL },
  { version: 2008, name: 'venue path order', sql: PATH_ORDER },
  { version: 2009, name: 'venue holders', sql: HOLDERS },
];
