/**
 * Alerts leave the fleet (docs/fleet.md, "Alerts"): a webhook POST signed exactly as the router's hook signs its
 * posts (docs/hook.md: the same signer, src/upstream/hook/signature.ts), and a mail sent through the SMTP server an
 * admin set (smtp.ts) or, with none set, handed to the host's mail transport (`sendmail -t`, e.g. Debian's exim4).
 * The runner evaluates and sends every `intervalMs`, one round at a
 * time, and never throws: a failure is logged and the next round tries again.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { hostname } from 'node:os';
import type { Db } from '../db/index.ts';
import { boundedFetch } from '../../http-client.ts';
import { signedHeaders } from '../../upstream/index.ts';
import { ALERT_LABELS, alertLine } from './alert-rules.ts';
import { alertSettings, evaluateAlerts, sendDue, type Delivery } from './alert-store.ts';
import { sendSmtp } from './smtp.ts';
import { zoneTime } from './zone.ts';

export const DEFAULT_SENDMAIL = '/usr/sbin/sendmail';
const WEBHOOK_TIMEOUT_MS = 10_000;
/** A webhook's answer is not read: this much of it is taken before the connection is closed. */
const WEBHOOK_ANSWER_MAX_BYTES = 4096;
const MAIL_TIMEOUT_MS = 30_000;

/** Whether the host has a mail transport at `path` (an executable sendmail). */
export function hasSendmail(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The webhook's JSON: the event id is the receiver's key to act once (a post whose answer was lost comes again). */
export function alertPayload(d: Delivery): Record<string, unknown> {
  return {
    v: 1,
    type: 'alert',
    id: Number(d.eventId),
    router: d.router,
    alert: d.kind,
    state: d.raised ? 'raised' : 'cleared',
    what: ALERT_LABELS[d.kind],
    detail: d.detail,
    at: d.atMs,
  };
}

/**
 * POSTs the body signed with `secret`; only a 2xx status is a delivery (the receiver said it has it, whatever its
 * body: one too long or too slow still counts, as for the router's hook).
 */
export async function postWebhook(url: string, secret: string, body: Uint8Array): Promise<void> {
  const a = await boundedFetch(url, {
    method: 'POST',
    headers: signedHeaders(secret, body, Date.now()),
    body,
    timeoutMs: WEBHOOK_TIMEOUT_MS,
    maxBytes: WEBHOOK_ANSWER_MAX_BYTES,
  });
  if (a.kind === 'none') throw new Error(`the webhook did not answer: ${a.message}`);
  if (a.status < 200 || a.status > 299) throw new Error(`the webhook answered ${a.status}`);
}

/** Text safe in a mail header: no line breaks (a router's words cannot add a header). */
const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ').slice(0, 300);

/** A header's words: as they are in ASCII, else an RFC 2047 encoded-word (UTF-8, base64). */
const headerText = (s: string): string =>
  /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;

/**
 * The mail of one event (RFC 5322; for `sendmail -t` the recipients are its To). `from` null: the transport's own
 * (sendmail's user). Its Date is the alert's time and its Message-ID the event's, the same on every try: a mail sent
 * twice (its answer lost) is one message to the reader's mail program.
 */
export function alertMail(d: Delivery, zone: string, from: string | null): string {
  const line = alertLine(d);
  const domain = from?.split('@')[1] ?? hostname();
  return [
    ...(from === null ? [] : [`From: ${oneLine(from)}`]),
    `To: ${oneLine(d.target)}`,
    `Subject: ${headerText(`[sluice fleet] ${oneLine(line)}`)}`,
    `Date: ${new Date(d.atMs).toUTCString().replace(/GMT$/, '+0000')}`,
    `Message-ID: <sluice-alert-${d.eventId}.${d.atMs}@${oneLine(domain)}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    `X-Sluice-Alert-Id: ${d.eventId}`,
    '',
    line,
    '',
    `Router: ${d.router}`,
    `What: ${ALERT_LABELS[d.kind]}`,
    `State: ${d.raised ? 'raised (it began)' : 'cleared (it ended)'}`,
    `Detail: ${d.detail}`,
    `At: ${zoneTime(d.atMs, zone)} ${zone}`,
    `Alert id: ${d.eventId}`,
    '',
  ].join('\n');
}

/** Hands a message to `sendmail -t -oi`: delivered to the transport when it exits 0. */
export function sendmail(path: string, message: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, ['-t', '-oi'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), MAIL_TIMEOUT_MS);
    child.stderr.on('data', (c: Buffer) => void (err = (err + c.toString('utf8')).slice(-500)));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${path} exited ${code ?? signal}${err ? `: ${err.trim()}` : ''}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(message);
  });
}

export interface AlertsOptions {
  db: Db;
  /** A router silent for longer is red (the dashboard's setting). */
  staleAfterMs: number;
  /** The zone of the times in a mail. */
  zone: string;
  /** How often a round runs (default 15 s). */
  intervalMs?: number;
  /** The mail transport when no SMTP server is set (default /usr/sbin/sendmail; none there: no mail). */
  sendmailPath?: string;
  /** How long after its alert a failing sending is still tried (default GIVE_UP_AFTER_MS, a day). */
  giveUpAfterMs?: number;
  /** The clock the evaluation judges silence by (tests inject one). */
  now?: () => number;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

export interface Alerts {
  /** One round now: evaluate, then send what is due. Rounds never overlap. */
  round(): Promise<void>;
  stop(): Promise<void>;
}

export function startAlerts(o: AlertsOptions): Alerts {
  const now = o.now ?? Date.now;
  const sendmailPath = o.sendmailPath ?? DEFAULT_SENDMAIL;
  let running: Promise<void> | null = null;
  let stopped = false;
  const once = async (): Promise<void> => {
    try {
      const { smtp } = await alertSettings(o.db);
      const mail = smtp !== null || hasSendmail(sendmailPath);
      const changes = await evaluateAlerts(o.db, { nowMs: now(), staleAfterMs: o.staleAfterMs, mail });
      for (const c of changes) o.log('alert', { alert: alertLine(c), detail: c.detail });
      const settings = await alertSettings(o.db);
      const timing = { now, giveUpAfterMs: o.giveUpAfterMs };
      const webhook = await sendDue(
        o.db,
        'webhook',
        async (d) => {
          if (settings.webhookSecret === null) throw new Error('no webhook secret is set');
          await postWebhook(d.target, settings.webhookSecret, Buffer.from(JSON.stringify(alertPayload(d))));
        },
        timing,
      );
      const server = settings.smtp;
      const mailed = await sendDue(
        o.db,
        'mail',
        (d) =>
          server === null
            ? sendmail(sendmailPath, alertMail(d, o.zone, null))
            : sendSmtp(server, {
                from: server.from,
                to: d.target.split(/,\s*/),
                message: alertMail(d, o.zone, server.from),
              }),
        timing,
      );
      for (const d of [...webhook.failed, ...mailed.failed])
        o.log('alert sending given up', {
          alert: alertLine(d),
          channel: d.channel,
          attempts: d.attempts,
          reason: d.error,
        });
    } catch (err) {
      o.log('alerts round failed', { reason: err instanceof Error ? err.message : String(err) });
    }
  };
  const round = (): Promise<void> => {
    running ??= once().finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => void (stopped ? undefined : round()), o.intervalMs ?? 15_000);
  timer.unref();
  return {
    round,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
