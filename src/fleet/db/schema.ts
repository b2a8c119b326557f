/**
 * The fleet database's schema as versioned migrations (docs/fleet.md, "Schema"). A migration is never edited once it
 * has landed: a change is a new one with the next version. The collector's tables are internal; the `fleet_*` views
 * are what a dashboard, Grafana or Metabase reads, and they keep their columns from one version to the next (a column
 * may be added, never renamed or dropped).
 *
 * Amounts are `numeric(78,0)` in the asset's smallest unit (an EVM uint256 has at most 78 digits): exact, never float.
 * Byte counts are `numeric` too: a router reports integers up to 2^53 - 1 and their sums may pass int8.
 */

export interface Migration {
  /** Unique across every list passed to migrate(): the collector's 1…999, the dashboard's 1000 and up. */
  version: number;
  name: string;
  /** One or more statements, run in the migration's transaction. */
  sql: string;
}

const TABLES = `
-- One row per router that ever sent an accepted message. name: its main.router_id (= the topic's id, = the MQTT user
-- under the documented ACL).
CREATE TABLE routers (
  id serial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  first_seen timestamptz NOT NULL DEFAULT now(),
  -- When the collector last accepted a message of any type from it (status included): "last heard".
  last_message_at timestamptz,
  -- The \`at\` of its newest usage or session message, and the highest seq stored.
  last_report_at timestamptz,
  max_seq bigint NOT NULL DEFAULT 0,
  -- Its last status (retained; the Last-Will says online false, reason 'lost').
  online boolean,
  status_reason text,
  status_at timestamptz,
  status_seq bigint,
  version text,
  uptime_s bigint,
  counters jsonb,
  pricing jsonb,
  queue jsonb,
  health jsonb
);

-- The exactly-once ledger: one row per usage or session message stored. Its key is the router's gap-free series, so
-- a message the broker delivers again (at least once) finds its row and changes nothing.
CREATE TABLE messages (
  router_id int NOT NULL REFERENCES routers (id),
  seq bigint NOT NULL,
  kind smallint NOT NULL, -- 1 usage, 2 session (the router's outbox record types)
  at timestamptz NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (router_id, seq)
);

-- Each session as its newest message says (seq: that message's number; a message older than it changes nothing
-- but what only older messages carry, e.g. the plan of a \`started\` processed after a usage report).
CREATE TABLE sessions (
  router_id int NOT NULL REFERENCES routers (id),
  id text NOT NULL,
  mac text NOT NULL,
  ip text,
  user_name text,
  plan text,
  metric text NOT NULL,
  state text NOT NULL,
  cause text,
  allotment numeric,
  used numeric,
  bytes numeric,
  remaining numeric,
  started_at timestamptz,
  expires_at timestamptz,
  ended_at timestamptz,
  rate_down bigint,
  rate_up bigint,
  -- Sums of the usage reports' up/down deltas (bytes from/to the client).
  up_bytes numeric NOT NULL DEFAULT 0,
  down_bytes numeric NOT NULL DEFAULT 0,
  seq bigint NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (router_id, id)
);
CREATE INDEX sessions_live ON sessions (router_id) WHERE state IN ('ACTIVE', 'PENDING');

-- Every payment a \`started\` or \`topup\` message carried, keyed by that message.
CREATE TABLE payments (
  router_id int NOT NULL REFERENCES routers (id),
  seq bigint NOT NULL,
  session_id text NOT NULL,
  event text NOT NULL,
  method text NOT NULL,
  reference text NOT NULL,
  amount numeric(78, 0) NOT NULL CHECK (amount >= 0),
  asset text NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (router_id, seq)
);
CREATE INDEX payments_at ON payments (at);
CREATE INDEX payments_reference ON payments (router_id, method, reference);

-- Revenue per router, UTC day, method and asset, kept in the transaction that stores each payment (the dashboard's
-- main query reads this, not a year of payments).
CREATE TABLE revenue_days (
  router_id int NOT NULL REFERENCES routers (id),
  day date NOT NULL,
  method text NOT NULL,
  asset text NOT NULL,
  amount numeric(78, 0) NOT NULL,
  payments bigint NOT NULL,
  PRIMARY KEY (router_id, day, method, asset)
);

-- Usage per router and hour (UTC) of the reports' \`at\`.
CREATE TABLE usage_hours (
  router_id int NOT NULL REFERENCES routers (id),
  hour timestamptz NOT NULL,
  up_bytes numeric NOT NULL,
  down_bytes numeric NOT NULL,
  rows bigint NOT NULL,
  reports bigint NOT NULL,
  PRIMARY KEY (router_id, hour)
);

-- How each x402-session escrow was settled on chain (the \`escrow-closed\` event).
CREATE TABLE escrow_closes (
  router_id int NOT NULL REFERENCES routers (id),
  seq bigint NOT NULL,
  session_id text,
  escrow_session_id text NOT NULL,
  units numeric(78, 0),
  transaction text,
  seller_amount numeric(78, 0),
  buyer_refund numeric(78, 0),
  at timestamptz NOT NULL,
  PRIMARY KEY (router_id, seq)
);

-- Each change of a router's online state (status messages and the Last-Will), for its history.
CREATE TABLE status_changes (
  router_id int NOT NULL REFERENCES routers (id),
  at timestamptz NOT NULL,
  online boolean NOT NULL,
  reason text,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_changes_router ON status_changes (router_id, at);

-- Messages the collector refused (not MessagePack/JSON, unknown version, a router other than its topic's, absurd
-- values), counted per topic and reason. router: the topic's id (not trusted: it is what the refused message claims).
CREATE TABLE rejects (
  topic text NOT NULL,
  reason text NOT NULL,
  router text,
  count bigint NOT NULL,
  first_at timestamptz NOT NULL,
  last_at timestamptz NOT NULL,
  last_seq bigint,
  sample text,
  PRIMARY KEY (topic, reason)
);
`;

const VIEWS = `
CREATE VIEW fleet_routers AS
SELECT r.name AS router, r.online, r.status_reason, r.status_at, r.last_message_at, r.last_report_at,
  r.max_seq AS last_seq, r.version, r.uptime_s, r.counters, r.pricing, r.queue, r.health, r.first_seen,
  extract(epoch FROM now() - r.last_message_at)::double precision AS silent_s,
  (r.queue ->> 'dropped')::bigint AS reported_dropped, (r.queue ->> 'expired')::bigint AS reported_expired
FROM routers r;

CREATE VIEW fleet_payments AS
SELECT r.name AS router, p.at, p.method, p.asset, p.amount, p.reference, p.session_id, p.event, p.seq
FROM payments p JOIN routers r ON r.id = p.router_id;

CREATE VIEW fleet_revenue_daily AS
SELECT r.name AS router, d.day, d.method, d.asset, d.amount, d.payments
FROM revenue_days d JOIN routers r ON r.id = d.router_id;

CREATE VIEW fleet_sessions AS
SELECT r.name AS router, s.id, s.mac, s.ip, s.user_name, s.plan, s.metric, s.state, s.cause, s.allotment, s.used,
  s.remaining, s.bytes, s.up_bytes, s.down_bytes, s.started_at, s.expires_at, s.ended_at, s.rate_down, s.rate_up,
  s.updated_at, s.state IN ('ACTIVE', 'PENDING') AS live
FROM sessions s JOIN routers r ON r.id = s.router_id;

CREATE VIEW fleet_live AS
SELECT r.name AS router, count(s.id) AS sessions, count(DISTINCT s.mac) AS clients
FROM routers r LEFT JOIN sessions s ON s.router_id = r.id AND s.state IN ('ACTIVE', 'PENDING')
GROUP BY r.name;

CREATE VIEW fleet_usage_hourly AS
SELECT r.name AS router, u.hour, u.up_bytes, u.down_bytes, u.rows, u.reports
FROM usage_hours u JOIN routers r ON r.id = u.router_id;

-- Holes in each router's series among the messages stored: from_seq..to_seq never reached the database. A hole
-- before the first stored message (the fleet started after the router) has after_at null.
CREATE VIEW fleet_gaps AS
SELECT r.name AS router, g.prev_seq + 1 AS from_seq, g.seq - 1 AS to_seq, g.seq - g.prev_seq - 1 AS missing,
  g.prev_at AS after_at, g.at AS before_at
FROM (
  SELECT router_id, seq, at,
    coalesce(lag(seq) OVER w, 0) AS prev_seq, lag(at) OVER w AS prev_at
  FROM messages WINDOW w AS (PARTITION BY router_id ORDER BY seq)
) g JOIN routers r ON r.id = g.router_id
WHERE g.seq > g.prev_seq + 1;

CREATE VIEW fleet_escrow_closes AS
SELECT r.name AS router, e.at, e.session_id, e.escrow_session_id, e.units, e.transaction, e.seller_amount,
  e.buyer_refund, e.seq
FROM escrow_closes e JOIN routers r ON r.id = e.router_id;

CREATE VIEW fleet_status_changes AS
SELECT r.name AS router, c.at, c.online, c.reason, c.received_at
FROM status_changes c JOIN routers r ON r.id = c.router_id;

CREATE VIEW fleet_rejects AS
SELECT topic, reason, router, count, first_at, last_at, last_seq, sample FROM rejects;
`;

// A router announces again, after a restart, the payments written just before a crash whose announcement it cannot
// be sure of (a new seq for the same payment): a payment is stored once per router, session, method and reference.
const PAYMENTS_ONCE = `
CREATE UNIQUE INDEX payments_once ON payments (router_id, session_id, method, reference);
`;

// What a hole in a router's series held. Every usage and session message says which seq its router's session message
// before it had (prev_session_seq; null from a router that does not say): a hole that the message after it says no
// session message fell into held only usage reports (held in RAM, droppable: lost in a crash, a power cut or a full
// queue, and nothing in sum, since the next report carries the totals again); one it fell into lost a session message
// (a payment, a start or an end: durable, never droppable). Usage per day from the sessions' own totals (their session
// events), which no dropped usage report changes.
const GAP_KINDS = `
ALTER TABLE messages ADD COLUMN prev_session_seq bigint;

CREATE OR REPLACE VIEW fleet_gaps AS
SELECT r.name AS router, g.prev_seq + 1 AS from_seq, g.seq - 1 AS to_seq, g.seq - g.prev_seq - 1 AS missing,
  g.prev_at AS after_at, g.at AS before_at,
  CASE WHEN g.prev_session_seq IS NULL THEN 'unknown'
    WHEN g.prev_session_seq <= g.prev_seq THEN 'usage'
    ELSE 'session' END AS kind
FROM (
  SELECT router_id, seq, at, prev_session_seq,
    coalesce(lag(seq) OVER w, 0) AS prev_seq, lag(at) OVER w AS prev_at
  FROM messages WINDOW w AS (PARTITION BY router_id ORDER BY seq)
) g JOIN routers r ON r.id = g.router_id
WHERE g.seq > g.prev_seq + 1;

CREATE VIEW fleet_usage_daily AS
SELECT r.name AS router, (s.ended_at AT TIME ZONE 'UTC')::date AS day, count(*) AS sessions, sum(s.bytes) AS bytes
FROM sessions s JOIN routers r ON r.id = s.router_id
WHERE s.ended_at IS NOT NULL
GROUP BY r.name, (s.ended_at AT TIME ZONE 'UTC')::date;
`;

// A live session's row is rewritten by every usage report (every 2 s per router): with room left on each page the new
// version goes on the same page (a HOT update: no index entry, pruned in place), so the table and its indexes keep
// their size instead of growing by a dead row per report. Pages written from now on keep half their room.
const SESSIONS_HOT = `
ALTER TABLE sessions SET (fillfactor = 50);
`;

// The ledger kept short: each router's stored numbers as spans of consecutive numbers (message_spans), which say
// forever which numbers were stored once their per-message rows are pruned (retention.ts), and from which the gaps
// are read. Every stored number up to routers.spans_to is in a span; a number above it is a row of messages only.
// A message numbered at or below spans_to is stored only if no span holds it (and then becomes a span of its own at
// once), so a replay of a pruned message is a duplicate and a hole before the watermark stays a hole until filled.
// pruned_to / pruned_rows: how far and how many of its rows retention deleted.
const SPANS = `
ALTER TABLE routers ADD COLUMN spans_to bigint NOT NULL DEFAULT 0,
  ADD COLUMN pruned_to bigint NOT NULL DEFAULT 0,
  ADD COLUMN pruned_rows bigint NOT NULL DEFAULT 0;

CREATE TABLE message_spans (
  router_id int NOT NULL REFERENCES routers (id),
  first_seq bigint NOT NULL,
  last_seq bigint NOT NULL CHECK (last_seq >= first_seq),
  -- The \`at\` of its first and last message, and the prev_session_seq of its first (what the hole before it held).
  first_at timestamptz NOT NULL,
  last_at timestamptz NOT NULL,
  first_prev_session_seq bigint,
  PRIMARY KEY (router_id, first_seq)
);

-- The holes between a router's spans and the rows above its spans_to (the minute or so not yet in spans): a read of
-- its spans and of an index range per router, not of the whole ledger. OFFSET 0 keeps the range per router (a join
-- the planner may otherwise turn into a scan of every row).
CREATE OR REPLACE VIEW fleet_gaps AS
SELECT r.name AS router, g.prev_seq + 1 AS from_seq, g.first_seq - 1 AS to_seq,
  g.first_seq - g.prev_seq - 1 AS missing, g.prev_at AS after_at, g.first_at AS before_at,
  CASE WHEN g.prev_session_seq IS NULL THEN 'unknown'
    WHEN g.prev_session_seq <= g.prev_seq THEN 'usage'
    ELSE 'session' END AS kind
FROM (
  SELECT router_id, first_seq, first_at, prev_session_seq,
    coalesce(lag(last_seq) OVER w, 0) AS prev_seq, lag(last_at) OVER w AS prev_at
  FROM (
    SELECT router_id, first_seq, last_seq, first_at, last_at, first_prev_session_seq AS prev_session_seq
    FROM message_spans
    UNION ALL
    SELECT t.* FROM routers o CROSS JOIN LATERAL (
      SELECT m.router_id, m.seq AS first_seq, m.seq AS last_seq, m.at AS first_at, m.at AS last_at,
        m.prev_session_seq
      FROM messages m
      WHERE m.router_id = o.id AND m.seq > o.spans_to OFFSET 0
    ) t
  ) runs WINDOW w AS (PARTITION BY router_id ORDER BY first_seq)
) g JOIN routers r ON r.id = g.router_id
WHERE g.first_seq > g.prev_seq + 1;

-- What the ledger holds per router: its spans, up to where they reach, and what retention pruned.
CREATE VIEW fleet_ledger AS
SELECT r.name AS router, r.max_seq AS last_seq, r.spans_to, r.pruned_to, r.pruned_rows,
  (SELECT count(*) FROM message_spans s WHERE s.router_id = r.id) AS spans
FROM routers r;
`;

/**
 * A refused message counted once, however many collectors it reached (session messages and statuses come to every
 * collector, unshared) and however often the broker brings it again: its digest (topic and payload) is kept for
 * REJECT_DIGEST_DAYS, longer than a collector's broker session can hold it.
 */
const REJECTS_ONCE = `
CREATE TABLE reject_digests (
  digest bytea PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reject_digests_at ON reject_digests (at);
`;

/**
 * What a router sent beyond its share of the collector's queue (collector/intake.ts): kept here, acknowledged, and
 * stored in its turn, so one router's flood neither waits in the broker ahead of every other router's messages nor is
 * dropped. A message is deleted once stored; a collector's restart finds what is left.
 */
const DEFERRED = `
CREATE TABLE deferred_messages (
  id bigserial PRIMARY KEY,
  router text NOT NULL,
  topic text NOT NULL,
  payload bytea NOT NULL,
  retained boolean NOT NULL,
  received_at bigint NOT NULL
);
CREATE INDEX deferred_messages_router ON deferred_messages (router, id);
`;

/**
 * Revenue per router, UTC hour, method and asset, kept by a trigger in the transaction that stores each payment (a
 * payment the unique index turned away inserts no row, so fires nothing): a day of any zone whose offset is whole
 * hours is a run of these hours, so the dashboard groups a year of them instead of a year of payments. Filled from
 * the payments stored before it.
 */
const REVENUE_HOURS = `
CREATE TABLE revenue_hours (
  router_id int NOT NULL REFERENCES routers (id),
  hour timestamptz NOT NULL,
  method text NOT NULL,
  asset text NOT NULL,
  amount numeric(78, 0) NOT NULL,
  payments bigint NOT NULL,
  PRIMARY KEY (router_id, hour, method, asset)
);
CREATE INDEX revenue_hours_hour ON revenue_hours (hour);
INSERT INTO revenue_hours (router_id, hour, method, asset, amount, payments)
SELECT router_id, date_trunc('hour', at, 'UTC'), method, asset, sum(amount), count(*)
FROM payments GROUP BY 1, 2, 3, 4;
CREATE FUNCTION revenue_hours_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO revenue_hours AS h (router_id, hour, method, asset, amount, payments)
  VALUES (NEW.router_id, date_trunc('hour', NEW.at, 'UTC'), NEW.method, NEW.asset, NEW.amount, 1)
  ON CONFLICT (router_id, hour, method, asset) DO UPDATE SET amount = h.amount + EXCLUDED.amount,
    payments = h.payments + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER payments_revenue_hours AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION revenue_hours_add();
CREATE VIEW fleet_revenue_hourly AS
SELECT r.name AS router, h.hour, h.method, h.asset, h.amount, h.payments
FROM revenue_hours h JOIN routers r ON r.id = h.router_id;
`;

/**
 * How many sessions a router's usage reports made new today (the database's UTC day): the bound on them
 * (collector/bounds.ts MAX_NEW_SESSIONS_PER_DAY) is checked against this under the router's lock, in O(1).
 */
const NEW_SESSIONS_DAY = `
ALTER TABLE routers ADD COLUMN usage_sessions_day date, ADD COLUMN usage_sessions integer NOT NULL DEFAULT 0;
`;

/**
 * Revenue per router, UTC quarter hour, method and asset, kept and filled like revenue_hours: every offset a zone
 * uses now is a whole number of quarter hours (+05:30, +05:45, -03:30), so each quarter lies within one day of any
 * zone. The dashboard reads a day of such a zone as its UTC day (revenue_days) corrected by the hours and quarters
 * between the zone's midnight and UTC's, not as the day's 96 quarters.
 */
const REVENUE_QUARTERS = `
CREATE TABLE revenue_quarters (
  router_id int NOT NULL REFERENCES routers (id),
  quarter timestamptz NOT NULL,
  method text NOT NULL,
  asset text NOT NULL,
  amount numeric(78, 0) NOT NULL,
  payments bigint NOT NULL,
  PRIMARY KEY (router_id, quarter, method, asset)
);
CREATE INDEX revenue_quarters_quarter ON revenue_quarters (quarter);
INSERT INTO revenue_quarters (router_id, quarter, method, asset, amount, payments)
SELECT router_id, date_bin('15 minutes', at, timestamptz '2000-01-01 00:00:00+00'), method, asset, sum(amount),
  count(*)
FROM payments GROUP BY 1, 2, 3, 4;
CREATE FUNCTION revenue_quarters_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO revenue_quarters AS q (router_id, quarter, method, asset, amount, payments)
  VALUES (NEW.router_id, date_bin('15 minutes', NEW.at, timestamptz '2000-01-01 00:00:00+00'), NEW.method,
    NEW.asset, NEW.amount, 1)
  ON CONFLICT (router_id, quarter, method, asset) DO UPDATE SET amount = q.amount + EXCLUDED.amount,
    payments = q.payments + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER payments_revenue_quarters AFTER INSERT ON payments FOR EACH ROW
  EXECUTE FUNCTION revenue_quarters_add();
CREATE VIEW fleet_revenue_quarterly AS
SELECT r.name AS router, q.quarter, q.method, q.asset, q.amount, q.payments
FROM revenue_quarters q JOIN routers r ON r.id = q.router_id;
`;

/**
 * Revenue per day of a fixed offset from UTC (minutes east; day D of +60 is [D 00:00 UTC - 1 h, D+1 00:00 UTC - 1 h)),
 * router, method and asset, for the offsets listed in revenue_offsets: the dashboard lists the offsets its zones take
 * (Europe/Berlin's +60 and +120, Asia/Kolkata's +330) the first time it reads them, so a zone's day is one such row
 * (corrected by an hour on the days its clock changes) instead of its UTC day and the hours and quarters between
 * the two midnights. Offset 0 is revenue_days. A listed offset is kept by a trigger in the transaction that stores each
 * payment; revenue_offset_keep() lists one and fills it from the quarters with the payments locked against writes
 * meanwhile, so a payment stored during the fill is counted once: by the fill or by the trigger.
 */
const REVENUE_OFFSET_DAYS = `
CREATE TABLE revenue_offsets (
  minutes int PRIMARY KEY CHECK (minutes % 15 = 0 AND minutes BETWEEN -1440 AND 1440 AND minutes <> 0),
  kept_since timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE revenue_offset_days (
  minutes int NOT NULL,
  day date NOT NULL,
  router_id int NOT NULL REFERENCES routers (id),
  method text NOT NULL,
  asset text NOT NULL,
  amount numeric(78, 0) NOT NULL,
  payments bigint NOT NULL,
  PRIMARY KEY (minutes, day, router_id, method, asset)
);
-- A period's UTC days read by their range, not the whole table.
CREATE INDEX revenue_days_day ON revenue_days (day);
CREATE FUNCTION revenue_offset_days_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO revenue_offset_days AS d (minutes, day, router_id, method, asset, amount, payments)
  SELECT o.minutes, ((NEW.at AT TIME ZONE 'UTC') + o.minutes * interval '1 minute')::date, NEW.router_id,
    NEW.method, NEW.asset, NEW.amount, 1
  FROM revenue_offsets o
  ON CONFLICT (minutes, day, router_id, method, asset) DO UPDATE SET amount = d.amount + EXCLUDED.amount,
    payments = d.payments + 1;
  RETURN NULL;
END $$;
CREATE TRIGGER payments_revenue_offset_days AFTER INSERT ON payments FOR EACH ROW
  EXECUTE FUNCTION revenue_offset_days_add();
-- SHARE ROW EXCLUSIVE waits for the transactions storing payments now and holds off new ones until the fill commits:
-- the fill sees every payment stored before, the trigger every one after.
CREATE FUNCTION revenue_offset_keep(m int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF m = 0 OR EXISTS (SELECT 1 FROM revenue_offsets WHERE minutes = m) THEN RETURN false; END IF;
  LOCK TABLE payments IN SHARE ROW EXCLUSIVE MODE;
  INSERT INTO revenue_offsets (minutes) VALUES (m) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN RETURN false; END IF;
  INSERT INTO revenue_offset_days (minutes, day, router_id, method, asset, amount, payments)
  SELECT m, ((quarter AT TIME ZONE 'UTC') + m * interval '1 minute')::date AS day, router_id, method, asset,
    sum(amount), sum(payments)
  FROM revenue_quarters GROUP BY day, router_id, method, asset;
  RETURN true;
END $$;
CREATE VIEW fleet_revenue_offset_daily AS
SELECT o.minutes, r.name AS router, o.day, o.method, o.asset, o.amount, o.payments
FROM revenue_offset_days o JOIN routers r ON r.id = o.router_id
UNION ALL
SELECT 0, r.name, d.day, d.method, d.asset, d.amount, d.payments
FROM revenue_days d JOIN routers r ON r.id = d.router_id;
`;

/**
 * An offset's days filled in the background, a slice at a time, instead of all at once with the payments' writes held
 * off (a year of 100 routers took minutes, in a page view). revenue_offsets.complete_from: the offset's rows are
 * complete for its days from it on ('-infinity': all; 'infinity': none yet). Listing an offset (revenue_offset_keep)
 * takes the payments' SHARE lock only for the instant of its row (it waits for the transactions storing payments now;
 * the caller bounds the wait with lock_timeout): every payment stored after it sees the listing. A slice
 * (revenue_offset_fill) locks the offset's row, sums the quarters of the days below complete_from down to the newest
 * day that has any (`days` days of them), and lowers complete_from to the slice's first day, in one short
 * transaction. The trigger counts a payment into an offset when its day is at or above complete_from; below it, it
 * takes the offset's row FOR SHARE (waiting for a slice under way, then reading where it reached) and leaves a day
 * still below to the fill: whose slice, locking the row, waits for that payment's transaction and then sees its
 * quarter. complete_from only goes down, and a slice covers only days below it, so a payment is counted by exactly
 * one: the trigger or a slice.
 */
const REVENUE_OFFSET_SLICES = `
ALTER TABLE revenue_offsets ADD COLUMN complete_from date NOT NULL DEFAULT 'infinity';
-- The offsets listed before were filled whole (migration 12).
UPDATE revenue_offsets SET complete_from = '-infinity';
CREATE OR REPLACE FUNCTION revenue_offset_days_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  o record;
  d date;
  f date;
BEGIN
  FOR o IN SELECT minutes, complete_from FROM revenue_offsets ORDER BY minutes LOOP
    d := ((NEW.at AT TIME ZONE 'UTC') + o.minutes * interval '1 minute')::date;
    IF d < o.complete_from THEN
      SELECT complete_from INTO f FROM revenue_offsets WHERE minutes = o.minutes FOR SHARE;
      CONTINUE WHEN d < f;
    END IF;
    INSERT INTO revenue_offset_days AS x (minutes, day, router_id, method, asset, amount, payments)
    VALUES (o.minutes, d, NEW.router_id, NEW.method, NEW.asset, NEW.amount, 1)
    ON CONFLICT (minutes, day, router_id, method, asset) DO UPDATE SET amount = x.amount + EXCLUDED.amount,
      payments = x.payments + 1;
  END LOOP;
  RETURN NULL;
END $$;
-- Lists offset m (true: listed now; false: it was, or it is UTC's own revenue_days).
CREATE OR REPLACE FUNCTION revenue_offset_keep(m int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF m = 0 OR EXISTS (SELECT 1 FROM revenue_offsets WHERE minutes = m) THEN RETURN false; END IF;
  LOCK TABLE payments IN SHARE MODE;
  INSERT INTO revenue_offsets (minutes) VALUES (m) ON CONFLICT DO NOTHING;
  RETURN FOUND;
END $$;
-- One slice of offset m's fill: up to \`days\` days with quarters below complete_from. Returns the new complete_from
-- ('-infinity' when no quarter is left below it; null: m is not listed).
CREATE FUNCTION revenue_offset_fill(m int, days int) RETURNS date LANGUAGE plpgsql AS $$
DECLARE
  f date;
  top timestamptz;
  lo date;
BEGIN
  SELECT complete_from INTO f FROM revenue_offsets WHERE minutes = m FOR UPDATE;
  IF NOT FOUND OR f = '-infinity' THEN RETURN f; END IF;
  -- The instant day f of offset m begins, and the newest quarter before it.
  SELECT max(quarter) INTO top FROM revenue_quarters
  WHERE quarter < (f::timestamp - m * interval '1 minute') AT TIME ZONE 'UTC';
  IF top IS NULL THEN
    lo := '-infinity';
  ELSE
    lo := ((top AT TIME ZONE 'UTC') + m * interval '1 minute')::date - (days - 1);
    INSERT INTO revenue_offset_days (minutes, day, router_id, method, asset, amount, payments)
    SELECT m, ((quarter AT TIME ZONE 'UTC') + m * interval '1 minute')::date AS day, router_id, method, asset,
      sum(amount), sum(payments)
    FROM revenue_quarters
    WHERE quarter >= (lo::timestamp - m * interval '1 minute') AT TIME ZONE 'UTC'
      AND quarter < (f::timestamp - m * interval '1 minute') AT TIME ZONE 'UTC'
    GROUP BY day, router_id, method, asset;
  END IF;
  UPDATE revenue_offsets SET complete_from = lo WHERE minutes = m;
  RETURN lo;
END $$;
-- Each offset kept, since when, and the first of its days complete (null: every one): the days of
-- fleet_revenue_offset_daily before it are still being filled.
CREATE VIEW fleet_revenue_offsets AS
SELECT minutes, kept_since, CASE WHEN complete_from = '-infinity' THEN NULL ELSE complete_from END AS complete_from
FROM revenue_offsets;
`;

export const FLEET_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'tables', sql: TABLES },
  { version: 2, name: 'views', sql: VIEWS },
  { version: 3, name: 'a payment stored once', sql: PAYMENTS_ONCE },
  { version: 4, name: 'gap kinds, usage from the sessions', sql: GAP_KINDS },
  { version: 5, name: 'sessions rewritten in place', sql: SESSIONS_HOT },
  { version: 6, name: 'the ledger in spans, pruned after its retention', sql: SPANS },
  { version: 7, name: 'a refused message counted once', sql: REJECTS_ONCE },
  { version: 8, name: "a router's flood kept aside", sql: DEFERRED },
  { version: 9, name: 'revenue per UTC hour', sql: REVENUE_HOURS },
  { version: 10, name: "sessions a router's usage made new per day", sql: NEW_SESSIONS_DAY },
  { version: 11, name: 'revenue per UTC quarter hour', sql: REVENUE_QUARTERS },
  { version: 12, name: 'revenue per day of the offsets the zones read', sql: REVENUE_OFFSET_DAYS },
  { version: 13, name: "an offset's days filled in slices", sql: REVENUE_OFFSET_SLICES },
];
