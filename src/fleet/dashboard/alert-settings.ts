/**
 * Where alerts go, as an admin sets it on the Settings page (a webhook URL and its secret, mail recipients), and the
 * Alerts page: every change told, and how each sending went. The secret is never shown back, only whether one is set.
 */
import type { Sql } from '../db/index.ts';
import { ALERT_LABELS, type AlertKind } from './alert-rules.ts';
import {
  alertSettings,
  failedSendings,
  GIVE_UP_AFTER_MS,
  recentEvents,
  storeAlertSettings,
  type AlertSettings,
} from './alert-store.ts';
import { InputError } from './auth.ts';
import { esc } from './html.ts';
import type { Page } from './pages.ts';
import { pageAsk, paging } from './paging.ts';
import type { ScreenContext } from './screens.ts';
import { DEFAULT_SMTP_PORT, SMTP_TLS_MODES, type SmtpTls } from './smtp.ts';
import type { Table } from './table.ts';
import { time } from './views.ts';

const MAIL = /^[^\s@,<>"()[\]\\;:]{1,64}@[A-Za-z0-9.-]{1,253}$/;
const MAX_RECIPIENTS = 20;
const MIN_SECRET = 16;
/** A host name or an IPv4 address (an IPv6 one in brackets is not taken: give its name). */
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3})$/;
const TLS_LABELS: Record<SmtpTls, string> = {
  starttls: 'STARTTLS (required; port 587)',
  tls: 'TLS from the start (port 465)',
  none: 'none (a relay on this host or network; port 25)',
};

/** How many sendings were given up, in words ('' for none): on Settings and on the Alerts page. */
async function givenUp(db: Sql): Promise<string> {
  const failed = await failedSendings(db);
  const total = failed.webhook + failed.mail;
  if (total === 0) return '';
  return (
    `<p class="error">${total} sending(s) given up (${failed.webhook} by webhook, ${failed.mail} by mail): still ` +
    `failing ${GIVE_UP_AFTER_MS / 3_600_000} h after their alert. Each, with its last error, on ` +
    '<a href="/alerts">Alerts</a>.</p>'
  );
}

export async function alertSettingsForm(db: Sql, csrf: string): Promise<string> {
  const s = await alertSettings(db);
  const failed = await givenUp(db);
  const secret = s.webhookSecret === null ? 'none set' : 'set (not shown; blank keeps it)';
  return (
    '<h2>Alerts</h2><p class="note">A router turning red, a session message lost in a gap, a damaged table, a ' +
    'failing journal or config problems: told once when it begins and once when it ends, by a webhook signed as ' +
    "the router's hook signs (docs/hook.md) and by mail: through the SMTP server below, or with none set, this " +
    "host's mail transport (sendmail) where it has one. " +
    '<a href="/alerts">What was told</a>.</p>' +
    failed +
    `<form method="post" action="/settings/alerts"><input type="hidden" name="csrf" value="${esc(csrf)}">` +
    `<p><label>Webhook URL <input name="webhook_url" size="40" value="${esc(s.webhookUrl ?? '')}" ` +
    'placeholder="https://example.net/sluice-alerts"></label></p>' +
    `<p><label>Webhook secret (${esc(secret)}) <input name="webhook_secret" type="password" ` +
    'autocomplete="new-password"></label></p>' +
    `<p><label>Mail to <input name="mail_to" size="40" value="${esc(s.mailTo.join(', '))}" ` +
    'placeholder="owner@example.net, ops@example.net"></label></p>' +
    smtpFields(s.smtp) +
    '<button>Save alerts</button></form>' +
    (s.updatedBy === null ? '' : `<p class="note">Last set by ${esc(s.updatedBy)}.</p>`)
  );
}

/** The SMTP server's fields: blank host, sendmail (if the host has one). The password is never shown back. */
function smtpFields(smtp: AlertSettings['smtp']): string {
  const tls = smtp?.tls ?? 'starttls';
  const password = smtp?.password == null ? 'none set' : 'set (not shown; blank keeps it for the same user)';
  return (
    '<fieldset><legend>Mail by SMTP</legend>' +
    `<p><label>Server <input name="smtp_host" size="30" value="${esc(smtp?.host ?? '')}" ` +
    'placeholder="smtp.example.net"></label> ' +
    `<label>port <input name="smtp_port" size="5" inputmode="numeric" value="${smtp?.port ?? ''}" ` +
    'placeholder="by TLS"></label></p>' +
    '<p><label>TLS <select name="smtp_tls">' +
    SMTP_TLS_MODES.map(
      (m) => `<option value="${m}"${m === tls ? ' selected' : ''}>${esc(TLS_LABELS[m])}</option>`,
    ).join('') +
    '</select></label></p>' +
    `<p><label>From <input name="smtp_from" size="30" value="${esc(smtp?.from ?? '')}" ` +
    'placeholder="sluice@example.net"></label></p>' +
    `<p><label>User <input name="smtp_user" size="20" value="${esc(smtp?.user ?? '')}" ` +
    'autocomplete="off"></label> ' +
    `<label>password (${esc(password)}) <input name="smtp_password" type="password" ` +
    'autocomplete="new-password"></label></p></fieldset>'
  );
}

/** The SMTP server an admin set, checked; null: none (blank server). */
function smtpInput(
  body: URLSearchParams,
  stored: AlertSettings['smtp'],
): Parameters<typeof storeAlertSettings>[2]['smtp'] {
  const host = (body.get('smtp_host') ?? '').trim();
  if (host === '') return null;
  if (!HOST.test(host)) throw new InputError(`the SMTP server ${JSON.stringify(host)} is not a host name`);
  const tls = (body.get('smtp_tls') ?? 'starttls') as SmtpTls;
  if (!SMTP_TLS_MODES.includes(tls)) throw new InputError(`the SMTP TLS ${JSON.stringify(tls)} is not one of ours`);
  const portText = (body.get('smtp_port') ?? '').trim();
  const port = portText === '' ? DEFAULT_SMTP_PORT[tls] : Number(portText);
  if (!/^\d{1,5}$/.test(String(port)) || port < 1 || port > 65535)
    throw new InputError(`the SMTP port ${JSON.stringify(portText)} is not a port (1-65535)`);
  const from = (body.get('smtp_from') ?? '').trim();
  if (!MAIL.test(from)) throw new InputError('mail by SMTP needs a From address (the sender its server knows)');
  const user = (body.get('smtp_user') ?? '').trim();
  const password = body.get('smtp_password') ?? '';
  if (user === '' && password !== '') throw new InputError('an SMTP password needs its user');
  const kept = stored !== null && stored.user === user && stored.password !== null;
  if (user !== '' && password === '' && !kept)
    throw new InputError(`the SMTP user ${JSON.stringify(user)} needs a password`);
  // A password in the clear crosses only this host: anywhere else it goes under TLS.
  if (user !== '' && tls === 'none' && !LOOPBACK.test(host))
    throw new InputError('an SMTP password is sent only under TLS (STARTTLS or TLS), or to this host');
  return {
    host,
    port,
    tls,
    from,
    user: user === '' ? null : user,
    password: user === '' ? null : password === '' ? undefined : password,
  };
}

/** Checks and stores an admin's alert settings; what to say on the page. */
export async function saveAlertSettings(db: Sql, user: string, body: URLSearchParams): Promise<string> {
  const url = (body.get('webhook_url') ?? '').trim();
  const secret = body.get('webhook_secret') ?? '';
  if (url !== '') {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InputError(`the webhook URL ${JSON.stringify(url)} is not a URL`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
      throw new InputError('the webhook URL must be http:// or https://');
  }
  if (secret !== '' && secret.length < MIN_SECRET)
    throw new InputError(`a webhook secret is at least ${MIN_SECRET} characters`);
  const stored = await alertSettings(db);
  if (url !== '' && secret === '' && stored.webhookSecret === null)
    throw new InputError('a webhook needs a secret: its posts are signed with it');
  const mailTo = (body.get('mail_to') ?? '')
    .split(/[\s,]+/)
    .map((a) => a.trim())
    .filter((a) => a !== '');
  for (const a of mailTo) if (!MAIL.test(a)) throw new InputError(`${JSON.stringify(a)} is not a mail address`);
  if (mailTo.length > MAX_RECIPIENTS) throw new InputError(`at most ${MAX_RECIPIENTS} mail recipients`);
  const smtp = smtpInput(body, stored.smtp);
  await storeAlertSettings(db, user, {
    webhookUrl: url === '' ? null : url,
    webhookSecret: secret === '' ? undefined : secret,
    mailTo,
    smtp,
  });
  return 'alerts saved';
}

export async function alertsScreen(c: ScreenContext): Promise<Page> {
  const ask = pageAsk(c.query, 'alerts');
  const { rows: events, total } = await recentEvents(c.db, ask);
  const how = (e: (typeof events)[number]): string =>
    e.sendings.length === 0
      ? 'not sent (no webhook or mail set then)'
      : e.sendings
          .map((s) =>
            s.sent_ms !== null
              ? `${s.channel} sent ${time(s.sent_ms, c.zone)}`
              : s.failed_ms !== null
                ? `${s.channel} failed, given up ${time(s.failed_ms, c.zone)} (${s.attempts} attempt(s): ` +
                  `${s.last_error ?? ''})`
                : `${s.channel} pending (${s.attempts} attempt(s)${s.last_error ? `: ${s.last_error}` : ''})`,
          )
          .join('; ');
  const table: Table = {
    id: 'alerts',
    title: 'Alerts, newest first',
    paging: paging(ask, total),
    columns: [
      { key: 'at', label: `at (${c.zone})` },
      { key: 'router', label: 'router' },
      { key: 'what', label: 'what' },
      { key: 'state', label: 'state' },
      { key: 'detail', label: 'detail' },
      { key: 'sent', label: 'told' },
      { key: 'id', label: 'alert id', numeric: true },
    ],
    rows: events.map((e) => [
      time(e.at_ms, c.zone),
      e.router,
      ALERT_LABELS[e.kind as AlertKind] ?? e.kind,
      e.raised ? 'raised' : 'cleared',
      e.detail,
      how(e),
      e.id,
    ]),
    rowClass: events.map((e) =>
      e.sendings.some((s) => s.failed_ms !== null)
        ? 'bad'
        : !e.raised
          ? undefined
          : e.sendings.some((s) => s.sent_ms === null)
            ? 'bad'
            : 'warn',
    ),
  };
  return {
    title: 'Alerts',
    refreshS: 15,
    sections: [
      '<p class="note">Each change told once: raised when it began, cleared when it ended. Where they go: ' +
        '<a href="/settings">Settings</a>.</p>' +
        (await givenUp(c.db)),
      table,
    ],
  };
}
