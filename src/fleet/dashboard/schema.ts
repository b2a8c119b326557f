/**
 * The dashboard's own tables, as migrations 1000 and up passed to the fleet's migrate() (docs/fleet.md, "Schema"):
 * operators (passwords only as scrypt hashes), their logins (only a SHA-256 of each cookie's token is stored: a copy
 * of the database opens no session) and the audit of every action sent to a router. Never edited once landed.
 */
import type { Migration } from '../db/index.ts';

const USERS = `
CREATE TABLE dashboard_users (
  name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
  role text NOT NULL CHECK (role IN ('admin', 'operator')),
  password text NOT NULL CHECK (password LIKE 'scrypt$%'),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE dashboard_logins (
  token_hash text PRIMARY KEY,
  user_name text NOT NULL REFERENCES dashboard_users (name) ON DELETE CASCADE,
  csrf text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
-- Each action, written before it is sent (who, when, what) and completed with the router's answer.
CREATE TABLE dashboard_audit (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  actor text NOT NULL,
  router text NOT NULL,
  command text NOT NULL,
  args jsonb NOT NULL,
  request_id text NOT NULL UNIQUE,
  nonce text NOT NULL,
  ok boolean,
  answered_at timestamptz,
  reply jsonb
);
CREATE INDEX dashboard_audit_router ON dashboard_audit (router, at);
CREATE VIEW fleet_audit AS
SELECT id, at, actor, router, command, args, request_id, ok, answered_at, reply FROM dashboard_audit;
`;

// Failed logins per user name, in the database: every dashboard process on it counts the same failures (a guesser
// cannot spread attempts over several). Names need not be users' (a guess of a name counts too), so no foreign key.
const LOGIN_FAILURES = `
CREATE TABLE dashboard_login_failures (
  user_name text PRIMARY KEY,
  failures int NOT NULL,
  first_at timestamptz NOT NULL
);
`;

// A user's own time zone (an IANA name both Intl and pg_timezone_names know, checked when set); null: the fleet's.
const USER_ZONE = `
ALTER TABLE dashboard_users ADD COLUMN time_zone text;
`;

// Alerts (alert-*.ts): where they go (one row, an admin's), each router's conditions as last found, every change
// (an event), and its sending per channel, written in the event's own transaction before anything is sent: the
// primary key (event, channel) is what makes it sent once by whichever process sends.
const ALERTS = `
CREATE TABLE dashboard_alert_settings (
  id int PRIMARY KEY CHECK (id = 1),
  webhook_url text,
  webhook_secret text,
  mail_to text NOT NULL DEFAULT '',
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE TABLE dashboard_alert_states (
  router text NOT NULL,
  kind text NOT NULL,
  active boolean NOT NULL,
  detail text NOT NULL,
  changed_at timestamptz NOT NULL,
  PRIMARY KEY (router, kind)
);
CREATE TABLE dashboard_alert_events (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  router text NOT NULL,
  kind text NOT NULL,
  raised boolean NOT NULL,
  detail text NOT NULL
);
CREATE TABLE dashboard_alert_deliveries (
  event_id bigint NOT NULL REFERENCES dashboard_alert_events (id),
  channel text NOT NULL CHECK (channel IN ('webhook', 'mail')),
  target text NOT NULL,
  attempts int NOT NULL DEFAULT 0,
  next_at timestamptz NOT NULL,
  sent_at timestamptz,
  last_error text,
  PRIMARY KEY (event_id, channel)
);
CREATE INDEX dashboard_alert_deliveries_unsent ON dashboard_alert_deliveries (channel, event_id) WHERE sent_at IS NULL;
`;

// A sending still failing a day after its alert is given up (alert-store.ts GIVE_UP_AFTER_MS): marked failed with
// its last error, so its channel's later alerts no longer wait behind it.
const ALERTS_GIVE_UP = `
ALTER TABLE dashboard_alert_deliveries ADD COLUMN failed_at timestamptz;
DROP INDEX dashboard_alert_deliveries_unsent;
CREATE INDEX dashboard_alert_deliveries_unsent ON dashboard_alert_deliveries (channel, event_id)
  WHERE sent_at IS NULL AND failed_at IS NULL;
`;

// Alert mail by SMTP (smtp.ts), where the host has no sendmail: the server an admin sets. The password, like the
// webhook's secret, is never shown back.
const ALERTS_SMTP = `
ALTER TABLE dashboard_alert_settings
  ADD COLUMN smtp_host text,
  ADD COLUMN smtp_port int CHECK (smtp_port BETWEEN 1 AND 65535),
  ADD COLUMN smtp_tls text NOT NULL DEFAULT 'starttls' CHECK (smtp_tls IN ('starttls', 'tls', 'none')),
  ADD COLUMN smtp_from text,
  ADD COLUMN smtp_user text,
  ADD COLUMN smtp_password text;
`;

export const DASHBOARD_MIGRATIONS: readonly Migration[] = [
  { version: 1000, name: 'dashboard users and audit', sql: USERS },
  { version: 1001, name: 'failed logins shared by every dashboard', sql: LOGIN_FAILURES },
  { version: 1002, name: "a user's own time zone", sql: USER_ZONE },
  { version: 1003, name: 'alerts', sql: ALERTS },
  { version: 1004, name: 'an alert sending given up', sql: ALERTS_GIVE_UP },
  { version: 1005, name: 'alert mail by SMTP', sql: ALERTS_SMTP },
];
