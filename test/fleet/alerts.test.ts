// tier: peers; needs initdb sendmail
/**
 * Alerts on a real PostgreSQL 15, a real HTTP receiver that checks the HMAC as docs/hook.md's receiver does, and the
 * host's real mail transport (Debian's exim4 via /usr/sbin/sendmail, delivering to the local mailbox /var/mail/mail,
 * read back): set by an admin on Settings (the secret never shown back, an operator refused); a router turning red,
 * a session message lost in a gap, a damaged table and a failing journal each told once when it begins and once when
 * it ends, by both; two evaluators at once (two collectors) tell each change once; a webhook that fails is retried,
 * and a restart meanwhile neither loses nor repeats it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import { setUser, type Alerts, type Dashboard } from '../../src/fleet/dashboard/index.ts';
import { startAlertReceiver, type AlertReceiver } from './alert-receiver.ts';
import { ALICE_PASSWORD, alertsOnClock, openAlertsFleet, type AlertsFleet } from './alerts-fleet.ts';
import { logIn } from './dashboard-http.ts';
import { waitFor } from './rig.ts';

const SECRET = 'alert-secret-0123456789abcdef';
const MAILBOX = '/var/mail/mail';
/** Router names of this run: the shared mailbox holds other runs' mails too. */
const tag = `${process.pid}x${Date.now().toString(36)}`;
const RED = `red-${tag}`;
const SICK = `sick-${tag}`;

let fleet: AlertsFleet;
let db: Db;
let dash: Dashboard;
let receiver: AlertReceiver;
let hookUrl: string;
let clock = Date.now();
const lines: string[] = [];

const alerts = (): Alerts => alertsOnClock(db, () => clock, lines, { staleAfterMs: 60_000, zone: 'Europe/Berlin' });

test.before(async () => {
  fleet = await openAlertsFleet();
  ({ db, dash } = fleet);
  for (const [id, name] of [
    [1, RED],
    [2, SICK],
  ] as const)
    await db.query(
      `INSERT INTO routers (id, name, last_message_at, max_seq, online, status_at, health)
       VALUES ($1, $2, to_timestamp($3::float8 / 1000), 0, true, now(), $4)`,
      [id, name, clock, JSON.stringify({ journal_failing: null, damaged_tables: 0, config_problems: 0 })],
    );
  receiver = await startAlertReceiver(SECRET);
  hookUrl = receiver.url;
  await setUser(db, 'oscar', 'operator', 'read only but long');
});

test.after(async () => {
  await receiver?.close();
  await fleet?.close();
});

/** This run's alert mails in the mailbox, once the transport's queue is empty: their subjects. */
async function mails(atLeast: number): Promise<string[]> {
  const read = (): string[] =>
    existsSync(MAILBOX)
      ? readFileSync(MAILBOX, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('Subject: [sluice fleet] ') && l.includes(tag))
          .map((l) => l.slice('Subject: [sluice fleet] '.length))
      : [];
  const queued = (): number => Number(execFileSync('/usr/sbin/exim4', ['-bpc'], { encoding: 'utf8' }).trim());
  await waitFor(() => read().length >= atLeast && queued() === 0, 60_000, `${atLeast} alert mails delivered`);
  return read();
}

test('an admin sets where alerts go; the secret is never shown back; an operator cannot', async () => {
  const admin = await logIn(dash.url, 'alice', ALICE_PASSWORD);
  const bad = await admin.post('/settings/alerts', { webhook_url: hookUrl, webhook_secret: '', mail_to: '' });
  assert.match(decodeURIComponent(bad.location ?? ''), /a webhook needs a secret/);
  const short = await admin.post('/settings/alerts', { webhook_url: hookUrl, webhook_secret: 'short', mail_to: '' });
  assert.match(decodeURIComponent(short.location ?? ''), /at least 16 characters/);
  const mail = await admin.post('/settings/alerts', {
    webhook_url: hookUrl,
    webhook_secret: SECRET,
    mail_to: 'mail@localhost, not an address',
  });
  assert.match(decodeURIComponent(mail.location ?? ''), /"not" is not a mail address/);
  const ok = await admin.post('/settings/alerts', {
    webhook_url: hookUrl,
    webhook_secret: SECRET,
    mail_to: 'mail@localhost',
  });
  assert.match(decodeURIComponent(ok.location ?? ''), /saved=alerts saved/);
  // Saved again without a secret: the stored one stays.
  await admin.post('/settings/alerts', { webhook_url: hookUrl, webhook_secret: '', mail_to: 'mail@localhost' });
  const page = (await admin.get('/settings')).text;
  assert.not.match(page, new RegExp(SECRET));
  assert.match(page, /set \(not shown; blank keeps it\)/);
  assert.match(page, /value="mail@localhost"/);
  const oscar = await logIn(dash.url, 'oscar', 'read only but long');
  assert.not.match((await oscar.get('/settings')).text, /Webhook URL/);
  const refusedPost = await oscar.post('/settings/alerts', { webhook_url: '', webhook_secret: '', mail_to: '' });
  assert.is(refusedPost.status, 403);
  const [row] = await db.query<{ webhook_secret: string }>('SELECT webhook_secret FROM dashboard_alert_settings');
  assert.is(row!.webhook_secret, SECRET);
});

test('red, then healthy: told once each by webhook and mail, with two evaluators at once', async () => {
  await db.query(`UPDATE routers SET online = false, status_reason = 'lost' WHERE name = $1`, [RED]);
  const [a, b] = [alerts(), alerts()];
  await Promise.all([a.round(), b.round(), a.round(), b.round()]);
  await Promise.all([a.round(), b.round()]);
  assert.equal(receiver.told(), [`${RED}: red raised`]);
  assert.is(receiver.accepted[0]!['detail'], 'offline: connection lost (Last-Will)');
  assert.is(receiver.accepted[0]!['v'], 1);
  await db.query(`UPDATE routers SET online = true, status_reason = NULL WHERE name = $1`, [RED]);
  await Promise.all([a.round(), b.round()]);
  await Promise.all([a.round(), b.round()]);
  assert.equal(receiver.told(), [`${RED}: red raised`, `${RED}: red cleared`]);
  assert.equal(await mails(2), [
    `${RED}: router red (offline or silent) (raised)`,
    `${RED}: router red (offline or silent) (cleared)`,
  ]);
  assert.is(receiver.forged, 0);
  await Promise.all([a.stop(), b.stop()]);
});

test('a lost session message, a damaged table, a failing journal: raised once, cleared once', async () => {
  const a = alerts();
  // seq 1, then 3 saying its previous session message was 2: a session message lost in the gap.
  await db.query(
    `INSERT INTO messages (router_id, seq, kind, at, prev_session_seq) VALUES (2, 1, 2, now(), 0), (2, 3, 2, now(), 2)`,
  );
  await db.query(`UPDATE routers SET health = $2 WHERE name = $1`, [
    SICK,
    JSON.stringify({ journal_failing: 'EIO', damaged_tables: 1, config_problems: 0 }),
  ]);
  await a.round();
  await a.round();
  const before = receiver.accepted.length;
  assert.equal(receiver.told().slice(2), [
    `${SICK}: session-gap raised`,
    `${SICK}: damaged-tables raised`,
    `${SICK}: journal-failing raised`,
  ]);
  // The message comes late (the hole closes), the tables are mended, the journal writes again.
  await db.query(`INSERT INTO messages (router_id, seq, kind, at, prev_session_seq) VALUES (2, 2, 2, now(), 1)`);
  await db.query(`UPDATE routers SET health = $2 WHERE name = $1`, [
    SICK,
    JSON.stringify({ journal_failing: null, damaged_tables: 0, config_problems: 0 }),
  ]);
  await a.round();
  await a.round();
  assert.equal(receiver.told().slice(before), [
    `${SICK}: session-gap cleared`,
    `${SICK}: damaged-tables cleared`,
    `${SICK}: journal-failing cleared`,
  ]);
  const subjects = await mails(8);
  assert.is(subjects.filter((s) => s.startsWith(`${SICK}:`)).length, 6);
  assert.is(new Set(subjects).size, subjects.length, 'no mail twice');
  await a.stop();
});

test('a webhook that fails is retried after its wait; a restart meanwhile neither loses nor repeats it', async () => {
  const first = alerts();
  receiver.refuseNext = 1;
  const before = receiver.accepted.length;
  clock += 61_000; // SICK silent past the 60 s setting; RED too.
  await first.round();
  assert.is(receiver.refused, 1);
  assert.is(receiver.accepted.length, before, 'refused: not delivered, and the later event waits behind it');
  const [pending] = await db.query<{ attempts: number; last_error: string }>(
    `SELECT attempts, last_error FROM dashboard_alert_deliveries WHERE channel = 'webhook' AND sent_at IS NULL
     ORDER BY event_id LIMIT 1`,
  );
  assert.equal(pending, { attempts: 1, last_error: 'the webhook answered 503' });
  await first.round();
  assert.is(receiver.accepted.length, before, 'within its wait: not tried again');
  await first.stop();
  // Another process (a restart) after the wait: each event sent once, in order.
  clock += 6_000;
  const second = alerts();
  await second.round();
  await second.round();
  assert.equal(receiver.told().slice(before).sort(), [`${RED}: red raised`, `${SICK}: red raised`]);
  assert.is(receiver.refused, 1);
  await second.stop();
  const dashPage = await (await logIn(dash.url, 'oscar', 'read only but long')).get('/alerts');
  assert.match(dashPage.text, /webhook sent/);
  assert.equal(
    lines.filter((l) => l.includes('failed')),
    [],
  );
});

test.run();
