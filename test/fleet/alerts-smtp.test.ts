// tier: peers; needs initdb exim4 root
/**
 * Alert mail by SMTP, on a host without sendmail (its path points nowhere): a real PostgreSQL 15 and a real SMTP
 * server, Debian's exim4 as a daemon on a free port, delivering to the local mailbox /var/mail/mail, read back. An
 * admin sets the server on Settings (its password never shown back, a password in the clear to another host
 * refused); a router turning red and turning healthy is mailed once each, with its From, To, Subject, Date and
 * Message-ID; a line that begins with "." arrives as written; STARTTLS set but the certificate not trusted is no
 * delivery; a server that refuses the recipient (550 at RCPT TO), and one that is not there, are failed sendings
 * retried, then given up a day after their alert, as webhooks are.
 */
import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSluiceError } from '../../src/errors.ts';
import type { Db } from '../../src/fleet/db/index.ts';
import type { Alerts, Dashboard } from '../../src/fleet/dashboard/index.ts';
import { sendSmtp } from '../../src/fleet/dashboard/smtp.ts';
import { freePort } from '../helpers/net.ts';
import { Exim, mailboxMessages } from '../peers/exim.ts';
import { ALICE_PASSWORD, alertsOnClock, openAlertsFleet, type AlertsFleet } from './alerts-fleet.ts';
import { logIn, type Visitor } from './dashboard-http.ts';
import { waitFor } from './rig.ts';

const MAILBOX = '/var/mail/mail';
const HOUR = 3_600_000;
/** This run's words: the shared mailbox holds other runs' mails too. */
const tag = `${process.pid}s${Date.now().toString(36)}`;
const RED = `red-${tag}`;
const FROM = `fleet-${tag}@example.net`;

let fleet: AlertsFleet;
let db: Db;
let dash: Dashboard;
let exim: Exim;
let admin: Visitor;
let clock = Date.parse('2026-11-27T12:00:00Z');
const lines: string[] = [];

const alerts = (): Alerts =>
  alertsOnClock(db, () => clock, lines, {
    staleAfterMs: 1000 * 24 * HOUR,
    zone: 'Europe/Berlin',
    sendmailPath: '/nonexistent/sendmail',
  });

test.before(async () => {
  [fleet, exim] = await Promise.all([openAlertsFleet(), Exim.create()]);
  ({ db, dash } = fleet);
  await db.query(
    `INSERT INTO routers (id, name, last_message_at, max_seq, online, status_at)
     VALUES (1, $1, to_timestamp($2::float8 / 1000), 0, true, now())`,
    [RED, clock],
  );
  admin = await logIn(dash.url, 'alice', ALICE_PASSWORD);
});

test.after(async () => {
  await Promise.all([fleet?.close(), exim?.close()]);
});

/** This run's messages in the mailbox whose Subject has `word`, once none of this run's is in exim's queue. */
async function delivered(word: string, atLeast: number): Promise<string[]> {
  const read = () => mailboxMessages(MAILBOX).filter((m) => m.includes(tag) && header(m, 'Subject')?.includes(word));
  const queued = (): boolean => execFileSync('/usr/sbin/exim4', ['-bp'], { encoding: 'utf8' }).includes(tag);
  await waitFor(() => read().length >= atLeast && !queued(), 60_000, `${atLeast} mails delivered`);
  return read();
}

const header = (message: string, name: string): string | undefined =>
  new RegExp(`^${name}: (.*)$`, 'mi').exec(message.split('\n\n')[0]!)?.[1];

const save = (fields: Record<string, string>) =>
  admin.post('/settings/alerts', { webhook_url: '', webhook_secret: '', mail_to: 'mail@localhost', ...fields });

const said = (r: { location?: string | null }) => decodeURIComponent(r.location ?? '');

test('an admin sets the SMTP server; its password never shown back, nor sent in the clear elsewhere', async () => {
  const server = { smtp_host: '127.0.0.1', smtp_port: String(exim.port), smtp_tls: 'none' };
  assert.match(said(await save({ ...server, smtp_from: '' })), /needs a From address/);
  assert.match(said(await save({ ...server, smtp_from: FROM, smtp_port: '70000' })), /is not a port/);
  assert.match(said(await save({ ...server, smtp_from: FROM, smtp_user: 'fleet' })), /"fleet" needs a password/);
  const clear = await save({
    ...server,
    smtp_host: 'smtp.example.net',
    smtp_from: FROM,
    smtp_user: 'fleet',
    smtp_password: 'hunter2-hunter2',
  });
  assert.match(said(clear), /sent only under TLS/);
  const withPassword = await save({ ...server, smtp_from: FROM, smtp_user: 'fleet', smtp_password: 'hunter2-hunter2' });
  assert.match(said(withPassword), /saved=alerts saved/);
  const page = (await admin.get('/settings')).text;
  assert.not.match(page, /hunter2/);
  assert.match(page, /password \(set \(not shown; blank keeps it for the same user\)\)/);
  assert.match(page, new RegExp(`name="smtp_port" size="5" inputmode="numeric" value="${exim.port}"`));
  // exim offers no AUTH here: the user is dropped again, and its password with it.
  assert.match(said(await save({ ...server, smtp_from: FROM })), /saved=alerts saved/);
  const [row] = await db.query<{ smtp_user: string | null; smtp_password: string | null }>(
    'SELECT smtp_user, smtp_password FROM dashboard_alert_settings',
  );
  assert.equal(row, { smtp_user: null, smtp_password: null });
});

test('red, then healthy: mailed once each by SMTP, From, To, Subject, Date and Message-ID right', async () => {
  await db.query(`UPDATE routers SET online = false, status_reason = 'lost' WHERE name = $1`, [RED]);
  const [a, b] = [alerts(), alerts()];
  await Promise.all([a.round(), b.round()]);
  await Promise.all([a.round(), b.round()]);
  clock += 5 * 60_000;
  await db.query(`UPDATE routers SET online = true, status_reason = NULL WHERE name = $1`, [RED]);
  await Promise.all([a.round(), b.round()]);
  await Promise.all([a.round(), b.round()]);
  await Promise.all([a.stop(), b.stop()]);
  const mails = await delivered(RED, 2);
  assert.equal(
    mails.map((m) => header(m, 'Subject')),
    [
      `[sluice fleet] ${RED}: router red (offline or silent) (raised)`,
      `[sluice fleet] ${RED}: router red (offline or silent) (cleared)`,
    ],
  );
  const events = await db.query<{ id: string }>('SELECT id::text AS id FROM dashboard_alert_events ORDER BY id');
  for (const [i, m] of mails.entries()) {
    const at = Date.parse('2026-11-27T12:00:00Z') + i * 5 * 60_000;
    assert.is(header(m, 'From'), FROM);
    assert.is(header(m, 'To'), 'mail@localhost');
    assert.is(header(m, 'Date'), new Date(at).toUTCString().replace('GMT', '+0000'));
    assert.is(header(m, 'Message-ID'), `<sluice-alert-${events[i]!.id}.${at}@example.net>`);
    assert.match(m, i === 0 ? /At: 2026-11-27 13:00:00 Europe\/Berlin/ : /At: 2026-11-27 13:05:00 Europe\/Berlin/);
  }
  const sent = await db.query<{ sent: boolean; attempts: number }>(
    `SELECT sent_at IS NOT NULL AS sent, attempts FROM dashboard_alert_deliveries WHERE channel = 'mail'`,
  );
  assert.equal(sent, [
    { sent: true, attempts: 1 },
    { sent: true, attempts: 1 },
  ]);
});

test('a line that begins with "." arrives as written (dot-stuffed on the wire, unstuffed by the server)', async () => {
  const body = ['.', '..two dots', '.one dot', 'a line', '. ', 'From the start', ''].join('\n');
  await sendSmtp(
    { host: '127.0.0.1', port: exim.port, tls: 'none', user: null, password: null },
    {
      from: FROM,
      to: ['mail@localhost'],
      message: `From: ${FROM}\nTo: mail@localhost\nSubject: dots ${tag}\n\n${body}`,
    },
  );
  const [m] = await delivered(`dots ${tag}`, 1);
  // mbox quotes a body line that begins "From " (>From): the mailbox's, not the mail's.
  assert.is(m!.split('\n\n').slice(1).join('\n\n'), body.replace('From the start', '>From the start') + '\n');
});

test('STARTTLS set, exim offering it with a certificate nobody signed: refused, nothing sent in clear', async () => {
  const err = await sendSmtp(
    { host: '127.0.0.1', port: exim.port, tls: 'starttls', user: null, password: null },
    { from: FROM, to: ['mail@localhost'], message: `Subject: never ${tag}\n\nnever` },
  ).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(isSluiceError(err, 'ERR_FLEET_ALERT_MAIL'), String(err));
  assert.match((err as Error).message, /^SMTP 127\.0\.0\.1:\d+ starttls: TLS: /);
  assert.equal(
    mailboxMessages(MAILBOX).filter((m) => m.includes(`never ${tag}`)),
    [],
  );
});

test('a server refusing the recipient, and one not there: retried, then given up a day after the alert', async () => {
  for (const [name, server] of [
    // exim refuses a local part with "%" (a relay's trick) at RCPT TO.
    ['refused', { smtp_host: '127.0.0.1', smtp_port: String(exim.port), mail_to: `no%${tag}@localhost` }],
    ['absent', { smtp_host: '127.0.0.1', smtp_port: String(await freePort()), mail_to: 'mail@localhost' }],
  ] as const) {
    assert.match(said(await save({ ...server, smtp_tls: 'none', smtp_from: FROM })), /saved=alerts saved/);
    const a = alerts();
    const raisedAt = (clock += HOUR);
    await db.query(`UPDATE routers SET online = $2, status_reason = $3 WHERE name = $1`, [
      RED,
      name === 'refused' ? false : true,
      name === 'refused' ? 'lost' : null,
    ]);
    await a.round();
    clock += HOUR;
    await a.round();
    const [pending] = await db.query<{ attempts: number; last_error: string; failed: boolean }>(
      `SELECT attempts, last_error, failed_at IS NOT NULL AS failed FROM dashboard_alert_deliveries
       WHERE channel = 'mail' AND sent_at IS NULL ORDER BY event_id DESC LIMIT 1`,
    );
    assert.is(pending!.attempts, 2, name);
    assert.is(pending!.failed, false, name);
    assert.match(
      pending!.last_error,
      name === 'refused'
        ? /^SMTP 127\.0\.0\.1:\d+ rcpt: RCPT answered 550 /
        : /^SMTP 127\.0\.0\.1:\d+ connect: connect ECONNREFUSED/,
    );
    clock = raisedAt + 24 * HOUR;
    await a.round();
    await a.stop();
    const [given] = await db.query<{ attempts: number; failed: boolean }>(
      `SELECT attempts, failed_at IS NOT NULL AS failed FROM dashboard_alert_deliveries
       WHERE channel = 'mail' AND sent_at IS NULL ORDER BY event_id DESC LIMIT 1`,
    );
    assert.equal(given, { attempts: 3, failed: true }, name);
  }
  const givenUp = lines.filter((l) => l.startsWith('alert sending given up'));
  assert.is(givenUp.length, 2);
  assert.match(givenUp[0]!, /"channel":"mail","attempts":3,"reason":"SMTP 127\.0\.0\.1:\d+ rcpt: RCPT answered 550/);
  const page = (await admin.get('/settings')).text;
  assert.match(page, /2 sending\(s\) given up \(0 by webhook, 2 by mail\)/);
});

test.run();
