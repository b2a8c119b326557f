/**
 * The fleet's revenue roll-ups beside the payments (docs/fleet.md, "Schema", "Time zone"): per UTC hour, per UTC
 * quarter hour, per day of each offset the dashboard's zones take; each kept by a trigger in the transaction that
 * stores a payment. Migrations of schema.ts's list: never edited once landed.
 */

/**
 * Revenue per router, UTC hour, method and asset, kept by a trigger in the transaction that stores each payment (a
 * payment the unique index turned away inserts no row, so fires nothing): a day of any zone whose offset is whole
 * hours is a run of these hours, so the dashboard groups a year of them instead of a year of payments. Filled from
 * the payments stored before it.
 */
export const REVENUE_HOURS = `
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
 * Revenue per router, UTC quarter hour, method and asset, kept and filled like revenue_hours: every offset a zone
 * uses now is a whole number of quarter hours (+05:30, +05:45, -03:30), so each quarter lies within one day of any
 * zone. The dashboard reads a day of such a zone as its UTC day (revenue_days) corrected by the hours and quarters
 * between the zone's midnight and UTC's, not as the day's 96 quarters.
 */
export const REVENUE_QUARTERS = `
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
export const REVENUE_OFFSET_DAYS = `
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
export const REVENUE_OFFSET_SLICES = `
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

/**
 * Revenue per day of an offset (minutes east; 0: UTC's days), method and asset across every router, and per month
 * (its first day), router, method and asset, for the days before the offset's `days_to` (revenue_totals_to): a year's
 * chart and totals read a row per day and method, and a router's year twelve rows, not a row per router and day.
 * `rows`: how many of the routers' day rows (a router's day of a method and asset with payments: a row of the Revenue
 * page's days) each sums. A day is added by revenue_totals_close(), which takes the payments' SHARE lock (it waits for
 * the transactions storing payments then, and holds off new ones) for one short transaction that sums up to `days`
 * days of the routers' rows (revenue_days; revenue_offset_days once the offset's fill is complete) from `days_to` up
 * to the offset's today, and raises `days_to` past them: it sees every payment stored before, and every payment stored
 * after reads the new `days_to`. The trigger counts a payment into these rows only when its day is before `days_to`
 * (a late one: a router that reports a past day), so a day being paid now is no row every router's transaction
 * updates. Each payment is counted once: by the close that sums its day, or by the trigger.
 */
export const REVENUE_TOTALS = `
CREATE TABLE revenue_totals_to (
  minutes int PRIMARY KEY CHECK (minutes % 15 = 0 AND minutes BETWEEN -1440 AND 1440),
  days_to date NOT NULL DEFAULT '-infinity'
);
CREATE TABLE revenue_totals_days (
  minutes int NOT NULL,
  day date NOT NULL,
  method text NOT NULL,
  asset text NOT NULL,
  amount numeric(78, 0) NOT NULL,
  payments bigint NOT NULL,
  rows bigint NOT NULL,
  PRIMARY KEY (minutes, day, method, asset)
);
CREATE TABLE revenue_totals_months (
  minutes int NOT NULL,
  month date NOT NULL,
  router_id int NOT NULL REFERENCES routers (id),
  method text NOT NULL,
  asset text NOT NULL,
  amount numeric(78, 0) NOT NULL,
  payments bigint NOT NULL,
  rows bigint NOT NULL,
  PRIMARY KEY (minutes, month, router_id, method, asset)
);
-- A router's days of an offset read by router (the chart's few routers over a year).
CREATE INDEX revenue_offset_days_router ON revenue_offset_days (minutes, router_id, day);
-- A late payment's day row is new when its router had none of that day, method and asset: for UTC the collector
-- writes revenue_days after the payment (collector/store.ts), for an offset the trigger payments_revenue_offset_days
-- fired before this one (triggers fire in the order of their names).
CREATE FUNCTION revenue_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  o record;
  d date;
  fresh int;
BEGIN
  FOR o IN SELECT minutes, days_to FROM revenue_totals_to ORDER BY minutes LOOP
    d := ((NEW.at AT TIME ZONE 'UTC') + o.minutes * interval '1 minute')::date;
    CONTINUE WHEN d >= o.days_to;
    IF o.minutes = 0 THEN
      fresh := CASE WHEN EXISTS (SELECT 1 FROM revenue_days WHERE router_id = NEW.router_id AND day = d
        AND method = NEW.method AND asset = NEW.asset) THEN 0 ELSE 1 END;
    ELSE
      fresh := CASE WHEN (SELECT payments FROM revenue_offset_days WHERE minutes = o.minutes AND day = d
        AND router_id = NEW.router_id AND method = NEW.method AND asset = NEW.asset) = 1 THEN 1 ELSE 0 END;
    END IF;
    INSERT INTO revenue_totals_days AS x (minutes, day, method, asset, amount, payments, rows)
    VALUES (o.minutes, d, NEW.method, NEW.asset, NEW.amount, 1, fresh)
    ON CONFLICT (minutes, day, method, asset) DO UPDATE SET amount = x.amount + EXCLUDED.amount,
      payments = x.payments + 1, rows = x.rows + EXCLUDED.rows;
    INSERT INTO revenue_totals_months AS x (minutes, month, router_id, method, asset, amount, payments, rows)
    VALUES (o.minutes, date_trunc('month', d)::date, NEW.router_id, NEW.method, NEW.asset, NEW.amount, 1, fresh)
    ON CONFLICT (minutes, month, router_id, method, asset) DO UPDATE SET amount = x.amount + EXCLUDED.amount,
      payments = x.payments + 1, rows = x.rows + EXCLUDED.rows;
  END LOOP;
  RETURN NULL;
END $$;
CREATE TRIGGER payments_revenue_totals AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION revenue_totals_add();
-- Sums up to \`days\` days of offset m from days_to on (its first day with rows, then the days after it) up to its
-- today. Returns the new days_to (the offset's today: all done; null: m's fill is not complete yet, nothing to sum).
-- Takes the payments' lock only when a day is left to sum; the caller bounds the wait with lock_timeout.
CREATE FUNCTION revenue_totals_close(m int, days int) RETURNS date LANGUAGE plpgsql AS $$
DECLARE
  today date := ((now() AT TIME ZONE 'UTC') + m * interval '1 minute')::date;
  f date;
  lo date;
  hi date;
BEGIN
  IF m <> 0 AND NOT EXISTS (SELECT 1 FROM revenue_offsets WHERE minutes = m AND complete_from = '-infinity') THEN
    RETURN NULL;
  END IF;
  SELECT days_to INTO f FROM revenue_totals_to WHERE minutes = m;
  IF f >= today THEN RETURN f; END IF;
  LOCK TABLE payments IN SHARE MODE;
  INSERT INTO revenue_totals_to (minutes) VALUES (m) ON CONFLICT DO NOTHING;
  -- Two closes at once: the second sums from where the first reached.
  SELECT days_to INTO f FROM revenue_totals_to WHERE minutes = m FOR UPDATE;
  IF f >= today THEN RETURN f; END IF;
  IF m = 0 THEN
    SELECT min(day) INTO lo FROM revenue_days WHERE day >= f;
  ELSE
    SELECT min(day) INTO lo FROM revenue_offset_days WHERE minutes = m AND day >= f;
  END IF;
  hi := least(today, coalesce(lo + days, today));
  WITH x AS MATERIALIZED (
    SELECT router_id, day, method, asset, amount, payments FROM revenue_days WHERE m = 0 AND day >= f AND day < hi
    UNION ALL
    SELECT router_id, day, method, asset, amount, payments FROM revenue_offset_days
    WHERE m <> 0 AND minutes = m AND day >= f AND day < hi),
  per_day AS (
    INSERT INTO revenue_totals_days (minutes, day, method, asset, amount, payments, rows)
    SELECT m, day, method, asset, sum(amount), sum(payments), count(*) FROM x GROUP BY day, method, asset)
  INSERT INTO revenue_totals_months AS t (minutes, month, router_id, method, asset, amount, payments, rows)
  SELECT m, date_trunc('month', day)::date, router_id, method, asset, sum(amount), sum(payments), count(*)
  FROM x GROUP BY 2, router_id, method, asset
  ON CONFLICT (minutes, month, router_id, method, asset) DO UPDATE SET amount = t.amount + EXCLUDED.amount,
    payments = t.payments + EXCLUDED.payments, rows = t.rows + EXCLUDED.rows;
  UPDATE revenue_totals_to SET days_to = hi WHERE minutes = m;
  RETURN hi;
END $$;
-- Per offset (0: UTC), the first day not summed in fleet_revenue_daily_totals and fleet_revenue_monthly_totals yet
-- (null: none summed yet).
CREATE VIEW fleet_revenue_totals_to AS
SELECT minutes, CASE WHEN days_to = '-infinity' THEN NULL ELSE days_to END AS days_to FROM revenue_totals_to;
CREATE VIEW fleet_revenue_daily_totals AS
SELECT minutes, day, method, asset, amount, payments, rows FROM revenue_totals_days;
-- A month's row holds its days before days_to: the whole month once days_to is past it.
CREATE VIEW fleet_revenue_monthly_totals AS
SELECT t.minutes, t.month, r.name AS router, t.method, t.asset, t.amount, t.payments, t.rows
FROM revenue_totals_months t JOIN routers r ON r.id = t.router_id;
`;
