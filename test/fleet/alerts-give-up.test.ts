// tier: peers; needs initdb
/**
 * A sending that keeps failing is given up a day after its alert, on a real PostgreSQL 15 and a real HTTP receiver
 * that answers 503 while it is "down": until then it is retried (pending, its later alerts waiting behind it); after,
 * it is marked failed with its last error, logged, counted on Settings and shown failed on the Alerts page, and the
 * alerts behind it go on once the receiver answers again. It is never tried again.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import type { Alerts, Dashboard } from '../../src/fleet/dashboard/index.ts';
import { startAlertReceiver, type AlertReceiver } from './alert-receiver.ts';
import { ALICE_PASSWORD, alertsOnClock, openAlertsFleet, type AlertsFleet } from './alerts-fleet.ts';
import { logIn } from './dashboard-http.ts';

const SECRET = 'alert-secret-0123456789abcdef';
const HOUR = 3_600_000;

let fleet: AlertsFleet;
let db: Db;
let dash: Dashboard;
let receiver: AlertReceiver;
let clock = Date.parse('2026-11-27T12:00:00Z');
const lines: string[] = [];

const alerts = (): Alerts =>
  alertsOnClock(db, () => clock, lines, {
    // Red by their Last-Will only, never by the test's clock jumping a day.
    staleAfterMs: 1000 * 24 * HOUR,
    zone: 'UTC',
    sendmailPath: '/nonexistent/sendmail',
  });

test.before(async () => {
  fleet = await openAlertsFleet();
  ({ db, dash } = fleet);
  await db.query(
    `INSERT INTO routers (id, name, last_message_at, max_seq, online, status_at) VALUES
       (1, 'cafe-a', to_timestamp($1::float8 / 1000), 0, true, now()),
       (2, 'cafe-b', to_timestamp($1::float8 / 1000), 0, true, now())`,
    [clock],
  );
  receiver = await startAlertReceiver(SECRET);
  receiver.down = true;
  const admin = await logIn(dash.url, 'alice', ALICE_PASSWORD);
  const saved = await admin.post('/settings/alerts', {
    webhook_url: receiver.url,
    webhook_secret: SECRET,
    mail_to: '',
  });
  assert.match(decodeURIComponent(saved.location ?? ''), /saved=alerts saved/);
});

test.after(async () => {
  await receiver?.close();
  await fleet?.close();
});

const sending = async () =>
  db.query<{ attempts: number; last_error: string | null; sent: boolean; failed: boolean }>(
    `SELECT attempts, last_error, sent_at IS NOT NULL AS sent, failed_at IS NOT NULL AS failed
     FROM dashboard_alert_deliveries ORDER BY event_id`,
  );

test('retried while its alert is under a day old, then given up: failed, its error kept, counted, shown', async () => {
  const a = alerts();
  await db.query(`UPDATE routers SET online = false, status_reason = 'lost' WHERE name = 'cafe-a'`);
  await a.round();
  assert.is(receiver.tries, 1);
  // An hour later cafe-b goes red too: its alert waits behind cafe-a's.
  for (let h = 0; h < 23; h++) {
    clock += HOUR;
    if (h === 0) await db.query(`UPDATE routers SET online = false, status_reason = 'lost' WHERE name = 'cafe-b'`);
    await a.round();
  }
  let rows = await sending();
  assert.is(rows.length, 2);
  assert.equal(rows[0], { attempts: 24, last_error: 'the webhook answered 503', sent: false, failed: false });
  assert.equal(rows[1], { attempts: 0, last_error: null, sent: false, failed: false }, 'waiting behind it');
  // A day after cafe-a's alert: its last try fails and it is given up; cafe-b's (23 h old) is tried, fails, waits.
  clock += HOUR;
  await a.round();
  rows = await sending();
  assert.equal(rows[0], { attempts: 25, last_error: 'the webhook answered 503', sent: false, failed: true });
  assert.equal(rows[1], { attempts: 1, last_error: 'the webhook answered 503', sent: false, failed: false });
  assert.equal(
    lines.filter((l) => l.startsWith('alert sending given up')),
    [
      'alert sending given up {"alert":"cafe-a: router red (offline or silent) (raised)","channel":"webhook",' +
        '"attempts":25,"reason":"the webhook answered 503"}',
    ],
  );
  // The receiver comes back: cafe-b's is sent, cafe-a's is never tried again.
  receiver.down = false;
  clock += 10 * 60_000;
  const before = receiver.tries;
  await a.round();
  await a.round();
  assert.is(receiver.tries, before + 1);
  assert.equal(
    receiver.accepted.map((p) => p['router']),
    ['cafe-b'],
  );
  rows = await sending();
  assert.equal(rows[0]!.failed, true);
  assert.equal(rows[1]!.sent, true);
  await a.stop();
  const admin = await logIn(dash.url, 'alice', ALICE_PASSWORD);
  const settings = (await admin.get('/settings')).text;
  assert.match(settings, /1 sending\(s\) given up \(1 by webhook, 0 by mail\): still failing 24 h after their alert/);
  const page = (await admin.get('/alerts')).text;
  assert.match(page, /webhook failed, given up 2026-11-28 12:00:00 \(25 attempt\(s\): the webhook answered 503\)/);
  assert.match(page, /1 sending\(s\) given up/);
});

test.run();
