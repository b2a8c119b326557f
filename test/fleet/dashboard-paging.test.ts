// tier: peers; needs initdb
/**
 * No page grows with what a router sends: a router with 300,003 live sessions gets a router page of 200 of them, in a
 * stable order, saying which rows of how many; the next pages and the CSV follow the same order; every paged table
 * refuses a page number that is not one with a 400 in the dashboard's words.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db } from '../../src/fleet/db/index.ts';
import { DASHBOARD_MIGRATIONS, setUser, startDashboard, type Dashboard } from '../../src/fleet/dashboard/index.ts';
import { VENUE_MIGRATIONS } from '../../src/fleet/venue/index.ts';
import { Postgres } from '../peers/postgres.ts';
import { seed } from './dashboard-seed.ts';

let pg: Postgres;
let db: Db;
let dash: Dashboard;
let cookie = '';
const now = Date.now();

test.before(async () => {
  pg = await Postgres.create();
  db = await openPostgres({ url: pg.url() });
  await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS, ...VENUE_MIGRATIONS]);
  await seed(db, now);
  // 250 venue sessions sold at cafe-north, one moved back and forth 500 times; 250 routers named for a broken rule;
  // 250 alerts: each more than a page.
  await db.query(
    `INSERT INTO venue_leases (id, venue, mac, state, holder, epoch, since, metric, allotment, used, remaining,
       reported_at, renewed_at, sold)
     SELECT 'cafe-north/' || lpad(to_hex(i), 16, '0'), 'hall', '02:00:00:01:' || lpad(to_hex(i / 256), 2, '0') || ':' ||
       lpad(to_hex(i % 256), 2, '0'), 'held', 'cafe-north', 1, now() - i * interval '1 second', 'bytes', 100, 0,
       100, now(), now(), 100
     FROM generate_series(1, 250) i`,
  );
  await db.query(
    `INSERT INTO venue_moves (lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used)
     SELECT 'cafe-north/' || lpad(to_hex(1), 16, '0'), e, 'hall', '02:00:00:01:00:01',
       CASE WHEN e % 2 = 1 THEN 'cafe-north' ELSE 'cafe-south' END,
       CASE WHEN e % 2 = 1 THEN 'cafe-south' ELSE 'cafe-north' END, now(), 'released', 'bytes', 100, 0
     FROM generate_series(2, 501) e`,
  );
  await db.query(
    `INSERT INTO venue_breaches (router, rule, detail) SELECT 'r' || lpad(i::text, 3, '0'), 'claim-venue', 'x'
     FROM generate_series(1, 250) i`,
  );
  await db.query(
    `INSERT INTO dashboard_alert_events (at, router, kind, raised, detail)
     SELECT now(), 'cafe-north', 'red', i % 2 = 1, 'alert ' || i FROM generate_series(1, 250) i`,
  );
  // 300,000 more live sessions at cafe-north (what three usage messages of 100,000 new ids left before the bounds).
  await db.query(
    `INSERT INTO sessions (router_id, id, mac, metric, state, used, bytes, seq, updated_at, started_at)
     SELECT (SELECT id FROM routers WHERE name = 'cafe-north'), 'flood-' || lpad(i::text, 6, '0'),
       '02:00:00:00:00:01', 'bytes', 'ACTIVE', 0, 0, 9, now(), now() - interval '1 hour'
     FROM generate_series(1, 300000) i`,
  );
  await setUser(db, 'alice', 'operator', 'correct horse battery');
  dash = await startDashboard({ db, port: 0, now: () => now });
  const r = await fetch(new URL('/login', dash.url), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ user: 'alice', password: 'correct horse battery' }),
  });
  cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
});

test.after(async () => {
  await dash?.close();
  await db?.close();
  await pg?.close();
});

const get = async (path: string): Promise<{ status: number; text: string }> => {
  const r = await fetch(new URL(path, dash.url), { headers: { cookie } });
  return { status: r.status, text: await r.text() };
};

/** The session ids of the sessions table's rows (the last column). */
const ids = (html: string): string[] => {
  const table = /<table id="sessions">([\s\S]*?)<\/table>/.exec(html)![1]!;
  return [...table.matchAll(/<tr><td>[\s\S]*?<\/tr>/g)].map((m) => /<td>([^<]*)<\/td><\/tr>$/.exec(m[0])![1]!);
};

test("a router's page with 300,003 live sessions shows 200 of them and says so", async () => {
  const first = await get('/routers/cafe-north');
  assert.is(first.status, 200);
  assert.ok(first.text.length < 200_000, `the page is ${first.text.length} bytes`);
  assert.match(first.text, /rows 1–200 of 300,003 \(200 a page\)/);
  const page1 = ids(first.text);
  assert.is(page1.length, 200);
  assert.equal(page1.slice(0, 3), ['flood-000001', 'flood-000002', 'flood-000003'], 'oldest first, then by id');
  assert.match(first.text, /href="\/routers\/cafe-north\?sessions_page=2"/);
  const second = await get('/routers/cafe-north?sessions_page=2');
  assert.equal(ids(second.text)[0], 'flood-000201');
  const last = await get('/routers/cafe-north?sessions_page=1501');
  assert.match(last.text, /rows 300,001–300,003 of 300,003/);
  assert.is(ids(last.text).length, 3);
  const csv = await get('/routers/cafe-north.csv?table=sessions&sessions_page=2');
  const lines = csv.text.trim().split('\r\n');
  assert.is(lines.length, 201, 'the CSV is the page');
  assert.match(lines[1]!, /flood-000201,UTC$/);
});

test('every paged table refuses a page that is not a number in range, with a 400', async () => {
  for (const [path, name] of [
    ['/routers?routers_page=0', 'routers_page'],
    ['/gaps?gaps_page=x', 'gaps_page'],
    ['/audit?audit_page=10001', 'audit_page'],
    ['/revenue?revenue_page=-1', 'revenue_page'],
    ['/routers/cafe-north?sessions_page=1e3', 'sessions_page'],
  ] as const) {
    const r = await get(path);
    assert.is(r.status, 400, path);
    assert.match(r.text, new RegExp(`${name} must be a page number from 1 to 10000`), path);
  }
  const revenue = await get('/revenue');
  assert.match(revenue.text, /<table id="revenue">/);
});

/** The rows of table `id` in a page. */
const rowsOf = (html: string, id: string): string[] => {
  const table = new RegExp(`<table id="${id}">([\\s\\S]*?)</table>`).exec(html)![1]!;
  return [...table.matchAll(/<tr[^>]*><td>[\s\S]*?<\/tr>/g)].map((m) => m[0]);
};

test('the Venues page (sessions, breaches) and the Alerts page: 200 rows a page, the next linked', async () => {
  const venues = await get('/venues');
  assert.is(venues.status, 200);
  assert.is(rowsOf(venues.text, 'paths').length, 200);
  assert.match(venues.text, /rows 1–200 of 250 \(200 a page\)/);
  assert.match(venues.text, /href="\/venues\?paths_page=2"/);
  assert.is(rowsOf(venues.text, 'breaches').length, 200);
  assert.match(venues.text, /href="\/venues\?breaches_page=2"/);
  const second = await get('/venues?paths_page=2&breaches_page=2');
  assert.is(rowsOf(second.text, 'paths').length, 50);
  assert.is(rowsOf(second.text, 'breaches').length, 50);
  const moved = rowsOf(venues.text, 'paths').find((r) => r.includes('02:00:00:01:00:01'))!;
  assert.ok(moved.length < 4000, `a path of 500 moves is ${moved.length} characters`);
  assert.match(moved, /… 476 more moves …/);
  const csv = await get('/venues.csv?table=breaches&breaches_page=2');
  assert.is(csv.text.trim().split('\r\n').length, 51, 'the CSV is the page');
  const alerts = await get('/alerts');
  assert.is(rowsOf(alerts.text, 'alerts').length, 200);
  assert.match(alerts.text, /href="\/alerts\?alerts_page=2"/);
  assert.is(rowsOf((await get('/alerts?alerts_page=2')).text, 'alerts').length, 50);
  assert.is((await get('/venues?paths_page=0')).status, 400);
});

test.run();
