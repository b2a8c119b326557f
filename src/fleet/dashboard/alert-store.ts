/**
 * Alerts in the database (docs/fleet.md, "Alerts"): an evaluation reads every router as the Routers page does,
 * compares with the states it recorded last, and writes each change as an event with its sendings (one per channel
 * configured then) in one transaction, under an advisory lock: two collectors evaluating at once find the change
 * once. A sending is sent by one process at a time per channel (a second lock, tried: the other skips its turn), in
 * the order of the events, and marked sent in the transaction that held it while it was sent; a failure waits and is
 * tried again, and the channel's later events wait behind it (in order, as the router's hook posts), until a day after
 * its alert: then it is marked failed with its last error and the next one goes.
 */
import type { Db, Sql } from '../db/index.ts';
import type { PageAsk } from './paging.ts';
import type { SmtpTls } from './smtp.ts';
import { alertChanges, findings, type AlertChange, type AlertKind, type AlertState } from './alert-rules.ts';
import { allRouters, ms } from './store.ts';

/** pg_advisory_xact_lock keys: ("sluice", "alerts") and per channel ("sluice", "send-webhook"/"send-mail"). */
const LOCK = 0x736c7569;
const EVALUATE = 1;
const SEND: Record<AlertChannel, number> = { webhook: 2, mail: 3 };

export type AlertChannel = 'webhook' | 'mail';

/** The SMTP server alert mails go through (none set: the host's sendmail, if it has one). */
export interface SmtpSettings {
  host: string;
  port: number;
  tls: SmtpTls;
  /** The mails' From and the envelope's sender. */
  from: string;
  /** Both or neither. */
  user: string | null;
  password: string | null;
}

export interface AlertSettings {
  webhookUrl: string | null;
  webhookSecret: string | null;
  /** Mail recipients, in order. */
  mailTo: string[];
  smtp: SmtpSettings | null;
  updatedBy: string | null;
  updatedMs: number | null;
}

export async function alertSettings(db: Sql): Promise<AlertSettings> {
  const [row] = await db.query<{
    webhook_url: string | null;
    webhook_secret: string | null;
    mail_to: string;
    smtp_host: string | null;
    smtp_port: number | null;
    smtp_tls: SmtpTls;
    smtp_from: string | null;
    smtp_user: string | null;
    smtp_password: string | null;
    updated_by: string;
    updated_ms: number;
  }>(
    `SELECT webhook_url, webhook_secret, mail_to, smtp_host, smtp_port, smtp_tls, smtp_from, smtp_user, smtp_password,
       updated_by, ${ms('updated_at')} AS updated_ms
     FROM dashboard_alert_settings WHERE id = 1`,
  );
  return {
    webhookUrl: row?.webhook_url ?? null,
    webhookSecret: row?.webhook_secret ?? null,
    mailTo: (row?.mail_to ?? '').split(',').filter((a) => a !== ''),
    smtp:
      row?.smtp_host == null || row.smtp_port === null || row.smtp_from === null
        ? null
        : {
            host: row.smtp_host,
            port: Number(row.smtp_port),
            tls: row.smtp_tls,
            from: row.smtp_from,
            user: row.smtp_user,
            password: row.smtp_password,
          },
    updatedBy: row?.updated_by ?? null,
    updatedMs: row?.updated_ms ?? null,
  };
}

/**
 * Stores what an admin set; a webhook secret or SMTP password left undefined keeps the stored one (a password is
 * kept only for the same user: a new user, or none, never inherits it).
 */
export async function storeAlertSettings(
  db: Sql,
  by: string,
  s: {
    webhookUrl: string | null;
    webhookSecret: string | null | undefined;
    mailTo: readonly string[];
    smtp: (Omit<SmtpSettings, 'password'> & { password: string | null | undefined }) | null;
  },
): Promise<void> {
  const smtp = s.smtp;
  await db.query(
    `INSERT INTO dashboard_alert_settings (id, webhook_url, webhook_secret, mail_to, updated_by, updated_at,
       smtp_host, smtp_port, smtp_tls, smtp_from, smtp_user, smtp_password)
     VALUES (1, $1, $2, $3, $4, now(), $6, $7, $8, $9, $10, $11)
     ON CONFLICT (id) DO UPDATE SET webhook_url = EXCLUDED.webhook_url,
       webhook_secret = CASE WHEN $5 THEN dashboard_alert_settings.webhook_secret ELSE EXCLUDED.webhook_secret END,
       mail_to = EXCLUDED.mail_to, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at,
       smtp_host = EXCLUDED.smtp_host, smtp_port = EXCLUDED.smtp_port, smtp_tls = EXCLUDED.smtp_tls,
       smtp_from = EXCLUDED.smtp_from, smtp_user = EXCLUDED.smtp_user,
       smtp_password = CASE WHEN $12 AND dashboard_alert_settings.smtp_user IS NOT DISTINCT FROM EXCLUDED.smtp_user
         THEN dashboard_alert_settings.smtp_password ELSE EXCLUDED.smtp_password END`,
    [
      s.webhookUrl,
      s.webhookSecret ?? null,
      s.mailTo.join(','),
      by,
      s.webhookSecret === undefined,
      smtp?.host ?? null,
      smtp?.port ?? null,
      smtp?.tls ?? 'starttls',
      smtp?.from ?? null,
      smtp?.user ?? null,
      smtp?.password ?? null,
      smtp !== null && smtp.user !== null && smtp.password === undefined,
    ],
  );
}

export interface EvaluateOptions {
  nowMs: number;
  staleAfterMs: number;
  /** Whether this host can send mail (a sendmail there): without, no mail sendings are written. */
  mail: boolean;
}

/** One evaluation: the changes found (and written, with their sendings), none when nothing changed. */
export async function evaluateAlerts(db: Db, o: EvaluateOptions): Promise<AlertChange[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK, EVALUATE]);
    const routers = await allRouters(tx);
    const recorded = await tx.query<AlertState>('SELECT router, kind, active, detail FROM dashboard_alert_states');
    const changes = alertChanges(
      recorded,
      routers.flatMap((r) => findings(r, o.nowMs, o.staleAfterMs)),
    );
    if (changes.length === 0) return changes;
    const settings = await alertSettings(tx);
    const at = `to_timestamp($1::float8 / 1000)`;
    for (const c of changes) {
      await tx.query(
        `INSERT INTO dashboard_alert_states (router, kind, active, detail, changed_at) VALUES ($2, $3, $4, $5, ${at})
         ON CONFLICT (router, kind) DO UPDATE SET active = EXCLUDED.active, detail = EXCLUDED.detail,
           changed_at = EXCLUDED.changed_at`,
        [o.nowMs, c.router, c.kind, c.raised, c.detail],
      );
      const [event] = await tx.query<{ id: string }>(
        `INSERT INTO dashboard_alert_events (at, router, kind, raised, detail) VALUES (${at}, $2, $3, $4, $5)
         RETURNING id::text AS id`,
        [o.nowMs, c.router, c.kind, c.raised, c.detail],
      );
      const sendings: Array<[AlertChannel, string]> = [];
      if (settings.webhookUrl !== null) sendings.push(['webhook', settings.webhookUrl]);
      if (o.mail && settings.mailTo.length > 0) sendings.push(['mail', settings.mailTo.join(', ')]);
      for (const [channel, target] of sendings)
        await tx.query(
          `INSERT INTO dashboard_alert_deliveries (event_id, channel, target, next_at) VALUES ($2, $3, $4, ${at})`,
          [o.nowMs, event!.id, channel, target],
        );
    }
    return changes;
  });
}

/** An event's sending, as the sender reads it. */
export interface Delivery {
  eventId: string;
  channel: AlertChannel;
  target: string;
  attempts: number;
  router: string;
  kind: AlertKind;
  raised: boolean;
  detail: string;
  atMs: number;
}

/** The wait before attempt n+1 after n failed: 5 s, 10 s, 20 s … at most 10 minutes. */
export const retryAfterMs = (failed: number): number => Math.min(5000 * 2 ** Math.max(0, failed - 1), 600_000);

/**
 * How long after its alert a failing sending is still tried: news of a day ago that never arrived is given up, so a
 * receiver gone for good neither holds its channel's later alerts back for ever nor shows them pending for ever.
 */
export const GIVE_UP_AFTER_MS = 24 * 3_600_000;

/** What a sending round did: how many were sent, and the sendings it gave up (marked failed). */
export interface SendResult {
  sent: number;
  failed: Array<Delivery & { error: string }>;
}

/**
 * Sends the channel's due sendings in the order of their events, each inside the transaction that locks the
 * channel and marks it sent; stops at the first failure (recorded, retried after retryAfterMs) or when another
 * process holds the channel. A failure `o.giveUpAfterMs` (default GIVE_UP_AFTER_MS) or more after its alert is
 * marked failed instead, with its error, and the round goes on to the next.
 */
export async function sendDue(
  db: Db,
  channel: AlertChannel,
  send: (d: Delivery) => Promise<void>,
  o: { now: () => number; giveUpAfterMs?: number | undefined },
): Promise<SendResult> {
  const result: SendResult = { sent: 0, failed: [] };
  for (;;) {
    const more = await db.transaction(async (tx) => {
      const [lock] = await tx.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1, $2) AS got', [
        LOCK,
        SEND[channel],
      ]);
      if (lock?.got !== true) return false;
      const [d] = await tx.query<Delivery & { nextMs: number }>(
        `SELECT d.event_id::text AS "eventId", d.channel, d.target, d.attempts, ${ms('d.next_at')} AS "nextMs",
           e.router, e.kind, e.raised, e.detail, ${ms('e.at')} AS "atMs"
         FROM dashboard_alert_deliveries d JOIN dashboard_alert_events e ON e.id = d.event_id
         WHERE d.channel = $1 AND d.sent_at IS NULL AND d.failed_at IS NULL ORDER BY d.event_id LIMIT 1`,
        [channel],
      );
      const now = o.now();
      if (d === undefined || d.nextMs > now) return false;
      try {
        await send(d);
      } catch (err) {
        const reason = (err instanceof Error ? err.message : String(err)).slice(0, 500);
        const giveUp = now - d.atMs >= (o.giveUpAfterMs ?? GIVE_UP_AFTER_MS);
        await tx.query(
          `UPDATE dashboard_alert_deliveries SET attempts = attempts + 1, last_error = $3,
             next_at = to_timestamp($4::float8 / 1000),
             failed_at = CASE WHEN $5 THEN to_timestamp($6::float8 / 1000) END
           WHERE event_id = $1 AND channel = $2`,
          [d.eventId, channel, reason, now + retryAfterMs(d.attempts + 1), giveUp, now],
        );
        if (!giveUp) return false;
        result.failed.push({ ...d, attempts: d.attempts + 1, error: reason });
        return true;
      }
      await tx.query(
        `UPDATE dashboard_alert_deliveries SET attempts = attempts + 1, sent_at = to_timestamp($3::float8 / 1000),
           last_error = NULL WHERE event_id = $1 AND channel = $2`,
        [d.eventId, channel, now],
      );
      result.sent++;
      return true;
    });
    if (!more) return result;
  }
}

/** How many sendings were given up, per channel (the Settings and Alerts pages say it). */
export async function failedSendings(db: Sql): Promise<Record<AlertChannel, number>> {
  const rows = await db.query<{ channel: AlertChannel; n: number }>(
    `SELECT channel, count(*)::int AS n FROM dashboard_alert_deliveries WHERE failed_at IS NOT NULL GROUP BY channel`,
  );
  return { webhook: 0, mail: 0, ...Object.fromEntries(rows.map((r) => [r.channel, Number(r.n)])) };
}

/** The newest events with their sendings' state, for the Alerts page. */
export interface EventRow {
  id: string;
  at_ms: number;
  router: string;
  kind: string;
  raised: boolean;
  detail: string;
  /** Per channel: sent when, or given up when (failed), or neither yet (pending), after how many attempts, why. */
  sendings: Array<{
    channel: string;
    sent_ms: number | null;
    failed_ms: number | null;
    attempts: number;
    last_error: string | null;
  }>;
}

/** A page of the alerts, newest first, and how many there are. */
export async function recentEvents(db: Sql, ask: PageAsk): Promise<{ rows: EventRow[]; total: string }> {
  const [rows, [n]] = await Promise.all([
    db.query<EventRow>(
      `SELECT e.id::text AS id, ${ms('e.at')} AS at_ms, e.router, e.kind, e.raised, e.detail,
       coalesce((SELECT json_agg(json_build_object('channel', d.channel, 'sent_ms', ${ms('d.sent_at')},
           'failed_ms', ${ms('d.failed_at')}, 'attempts', d.attempts, 'last_error', d.last_error) ORDER BY d.channel)
         FROM dashboard_alert_deliveries d WHERE d.event_id = e.id), '[]') AS sendings
     FROM dashboard_alert_events e ORDER BY e.id DESC LIMIT $1 OFFSET $2`,
      [ask.size, ask.offset],
    ),
    db.query<{ n: string }>('SELECT count(*)::text AS n FROM dashboard_alert_events'),
  ]);
  return { rows, total: n?.n ?? '0' };
}
