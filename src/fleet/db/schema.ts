/**
 * The fleet database's schema as versioned migrations (docs/fleet.md, "Schema"). A migration is never edited once it
 * has landed: a change is a new one with the next version. The collector's tables are internal; the `fleet_*` views
 * are what a dashboard, Grafana or Metabase reads, and they keep their columns from one version to the next (a column
 * may be added, never renamed or dropped).
 *
 * Amounts are `numeric(78,0)` in the asset's smallest unit (an EVM uint256 has at most 78 digits): exact, never float.
 * Byte counts are `numeric` too: a router reports integers up to 2^53 - 1 and their sums may pass int8.
 */

import {
  REVENUE_HOURS,
  REVENUE_OFFSET_DAYS,
  REVENUE_OFFSET_SLICES,
  REVENUE_QUARTERS,
  REVENUE_TOTALS,
} from './schema-revenue.ts';

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
 * How many sessions a router's usage reports made new today (the database's UTC day): the bound on them
 * (collector/bounds.ts MAX_NEW_SESSIONS_PER_DAY) is checked against this under the router's lock, in O(1).
 */
const NEW_SESSIONS_DAY = `
ALTER TABLE routers ADD COLUMN usage_sessions_day date, ADD COLUMN usage_sessions integer NOT NULL DEFAULT 0;
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
  { version: 14, name: "the fleet's revenue per day, method and asset", sql: REVENUE_TOTALS },
];
