// tier: peers; needs initdb mosquitto chromium
/**
 * The fleet dashboard on a real PostgreSQL 15, a real mosquitto and headless Chromium: no page without a login; the
 * read-only operator cannot act (no form, and a forged POST is refused); a router silent for longer than the
 * dashboard's setting turns red (an injected clock, no waiting); each CSV holds exactly what its table shows; an
 * admin's action goes out signed as the router's own verifier (src/upstream/mqtt/commands.ts) expects and is audited
 * with the router's answer. Every page fits 1366 px and 390 px, in the admin's own zone (Europe/Berlin), shown on
 * each. SLUICE_FLEET_SCREENSHOTS=<dir> keeps what an operator sees (docs/fleet/ holds them).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db } from '../../src/fleet/db/index.ts';
import {
  DASHBOARD_MIGRATIONS,
  connectMqttBus,
  setUser,
  startDashboard,
  type Dashboard,
} from '../../src/fleet/dashboard/index.ts';
import { CommandVerifier, type Command } from '../../src/upstream/mqtt/commands.ts';
import { Browser, browserUnavailableReason, type Page } from '../e2e/browser.ts';
import { skipTest } from '../helpers/skip.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { Postgres } from '../peers/postgres.ts';
import { parseCsv } from './dashboard-http.ts';
import { NORTH_MACS, seed } from './dashboard-seed.ts';

const SECRET = 'a-command-key-of-cafe-north-0123456789';
const ADMIN = ['alice', 'correct horse battery'] as const;
const OPERATOR = ['oscar', 'read only but long'] as const;
const SHOTS = process.env['SLUICE_FLEET_SCREENSHOTS'];
/** The pages checked at a laptop's and a phone's width (and kept as docs/fleet/<name>-<width>.png). */
const SCREENS = [
  ['revenue', '/revenue'],
  ['routers', '/routers'],
  ['router-sessions', '/routers/cafe-north'],
  ['gaps', '/gaps'],
  ['audit', '/audit'],
  ['venues', '/venues'],
  ['alerts', '/alerts'],
  ['settings', '/settings'],
] as const;

let pg: Postgres;
let db: Db;
let broker: Mosquitto;
let dash: Dashboard;
let router: mqtt.MqttClient;
let bus: Awaited<ReturnType<typeof connectMqttBus>>;
/** The dashboard's clock: moved by the tests, never waited for. */
let clock = Date.now();
const start = clock;
const received: Command[] = [];

test.before(async () => {
  pg = await Postgres.create();
  db = await openPostgres({ url: pg.url() });
  await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS]);
  await seed(db, start);
  await setUser(db, ADMIN[0], 'admin', ADMIN[1]);
  await setUser(db, OPERATOR[0], 'operator', OPERATOR[1]);
  broker = await Mosquitto.create();
  // cafe-north's command channel, as the router runs it: its own verifier with its key, a reply per command.
  const verifier = new CommandVerifier(SECRET, 300_000);
  router = await mqtt.connectAsync(broker.url, { clientId: 'cafe-north' });
  await router.subscribeAsync('sluice/cafe-north/cmd', { qos: 1 });
  router.on('message', (_topic, payload) => {
    let reply: Record<string, unknown>;
    try {
      const c = verifier.verify(payload);
      received.push(c);
      reply = { id: c.id, nonce: c.nonce, cmd: c.cmd, ok: true, result: { gate: 'closed' } };
    } catch (err) {
      reply = { ok: false, error: { code: (err as { code?: string }).code, message: String(err) } };
    }
    void router.publishAsync('sluice/cafe-north/cmd/reply', JSON.stringify(reply), { qos: 1 });
  });
  bus = await connectMqttBus({ url: broker.url, prefix: 'sluice', clientId: 'fleet-dashboard-test' });
  dash = await startDashboard({
    db,
    port: 0,
    bus,
    commandKeys: new Map([['cafe-north', SECRET]]),
    staleAfterMs: 60_000,
    now: () => clock,
    replyWaitMs: 20_000,
  });
});

test.after(async () => {
  await dash?.close();
  await bus?.close();
  await router?.endAsync();
  await broker?.close();
  await db?.close();
  await pg?.close();
});

async function loginCookie(user: string, password: string): Promise<string> {
  const r = await fetch(new URL('/login', dash.url), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ user, password }),
  });
  assert.is(r.status, 303, `login of ${user}`);
  const cookie = r.headers.get('set-cookie') ?? '';
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  return cookie.split(';')[0]!;
}

const csrfOf = async (cookie: string, path: string): Promise<string> => {
  const html = await (await fetch(new URL(path, dash.url), { headers: { cookie } })).text();
  return /name="csrf" value="([^"]+)"/.exec(html)![1]!;
};

const post = (path: string, cookie: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(new URL(path, dash.url), {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields),
  });

test('no page, CSV or action without a login; bad input gets a clear 400; the password is stored hashed', async () => {
  for (const path of ['/', '/revenue', '/routers', '/routers/cafe-north', '/routers.csv?table=routers', '/audit']) {
    const r = await fetch(new URL(path, dash.url), { redirect: 'manual' });
    assert.ok(r.status === 303 && (r.status === 303 ? r.headers.get('location') : '') !== null, path);
    if (path !== '/') assert.is(r.headers.get('location'), '/login', path);
  }
  const anon = await post('/routers/cafe-north/terminate', '', { mac: NORTH_MACS[0]! });
  assert.is(anon.status, 401);
  const wrong = await fetch(new URL('/login', dash.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ user: ADMIN[0], password: 'not the password' }),
  });
  assert.is(wrong.status, 401);
  assert.match(await wrong.text(), /wrong user name or password/);
  const cookie = await loginCookie(...OPERATOR);
  const bad = await fetch(new URL('/revenue?from=yesterday', dash.url), { headers: { cookie } });
  assert.is(bad.status, 400);
  assert.match(await bad.text(), /from must be a date YYYY-MM-DD/);
  // Input PostgreSQL would refuse is refused first, in the dashboard's words; the database's never reach a page.
  const page = async (path: string) => {
    const r = await fetch(new URL(path, dash.url), { headers: { cookie } });
    return [r.status, await r.text()] as const;
  };
  const [febStatus, feb] = await page('/revenue?from=2026-02-30');
  assert.is(febStatus, 400);
  assert.match(feb, /from: 2026-02-30 is no day of the calendar/);
  const [pathStatus, path] = await page('/routers/%E0%A4%A');
  assert.is(pathStatus, 400);
  assert.match(path, /is not valid percent-encoded UTF-8/);
  const [nulStatus, nul] = await page('/routers/a%00b');
  assert.is(nulStatus, 404);
  assert.match(nul, /a router id is 1 to 64 of/);
  for (const text of [feb, path, nul]) assert.not.match(text, /did not answer|invalid byte|syntax|out of range/);
  const stored = await db.query<{ password: string }>('SELECT password FROM dashboard_users');
  for (const { password } of stored) {
    assert.match(password, /^scrypt\$16384\$8\$1\$/);
    assert.not.match(password, /correct horse|read only/);
  }
});

test('the read-only operator cannot act: no form, a forged POST refused, nothing sent, nothing audited', async () => {
  const cookie = await loginCookie(...OPERATOR);
  const html = await (await fetch(new URL('/routers/cafe-north', dash.url), { headers: { cookie } })).text();
  assert.not.match(html, /action="\/routers\/cafe-north\/terminate"/);
  assert.match(html, /Read-only/);
  const csrf = await csrfOf(cookie, '/routers/cafe-north');
  const r = await post('/routers/cafe-north/terminate', cookie, { csrf, mac: NORTH_MACS[0]! });
  assert.is(r.status, 403);
  assert.match(await r.text(), /read-only operators cannot act/);
  // An admin's form without its CSRF token, or from another site, is refused too.
  const admin = await loginCookie(...ADMIN);
  assert.is((await post('/routers/cafe-north/terminate', admin, { mac: NORTH_MACS[0]! })).status, 403);
  const adminCsrf = await csrfOf(admin, '/routers/cafe-north');
  const foreign = await post(
    '/routers/cafe-north/terminate',
    admin,
    { csrf: adminCsrf, mac: NORTH_MACS[0]! },
    {
      origin: 'http://evil.example',
    },
  );
  assert.is(foreign.status, 403);
  assert.equal(received, []);
  assert.equal(await db.query('SELECT * FROM dashboard_audit'), []);
});

/** The table's cells as the page shows them, and its CSV (fetched with the page's own link) parsed, zone apart. */
async function tableAndCsv(page: Page, id: string): Promise<{ shown: string[][]; csv: string[][] }> {
  // The whole page parsed: a table read while its rows still stream in is not the table.
  await page.waitFor('the page loaded', `document.readyState === 'complete'`);
  const r = await page.evaluate<{ shown: string[][]; csv: string }>(`(async () => {
    const t = document.getElementById(${JSON.stringify(id)});
    const last = t.querySelector('thead th:last-child')?.textContent;
    const n = t.querySelectorAll('thead th').length - (last === 'actions' ? 1 : 0);
    const rows = [[...t.querySelectorAll('thead th')].slice(0, n).map((c) => c.textContent)];
    for (const tr of t.querySelectorAll('tbody tr')) rows.push([...tr.children].slice(0, n).map((c) => c.textContent));
    const link = t.closest('.scroll').previousElementSibling.querySelector('a.csv');
    return { shown: rows, csv: await (await fetch(link.href)).text() };
  })()`);
  // The CSV is the table and, in a last column, the time zone its days and times are in.
  const csv = parseCsv(r.csv);
  assert.equal(
    csv.map((row) => row.at(-1)),
    ['time zone', ...csv.slice(1).map(() => 'UTC')],
  );
  return { shown: r.shown, csv: csv.map((row) => row.slice(0, -1)) };
}

async function logIn(page: Page, user: string, password: string): Promise<void> {
  await page.goto(new URL('/login', dash.url).href);
  await page.evaluate(`(() => {
    document.querySelector('input[name=user]').value = ${JSON.stringify(user)};
    document.querySelector('input[name=password]').value = ${JSON.stringify(password)};
  })()`);
  await page.click('form.login button');
  await page.waitFor(
    'a page past the login',
    `!location.pathname.startsWith('/login') || !!document.querySelector('.error')`,
  );
}

const rowClass = (page: Page, router: string): Promise<string> =>
  page.evaluate(`[...document.querySelectorAll('#routers tbody tr')]
    .find((tr) => tr.firstElementChild.textContent === ${JSON.stringify(router)})?.className ?? 'missing'`);

const skip = browserUnavailableReason();
if (skip !== null) skipTest(test, 'the dashboard in Chromium', skip, { ciInstalls: true });
else
  test('in Chromium: login; revenue, health, sessions; CSV = table; red when silent; audited actions', async () => {
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
    const browser = await Browser.launch(null);
    try {
      const page = await browser.newPage({ width: 1366, height: 900, mobile: false });
      // The pages' CSP allows no script to fetch; the test's own fetch of the CSV links needs it lifted.
      await page.send('Page.setBypassCSP', { enabled: true });
      await page.goto(new URL('/routers', dash.url).href);
      assert.ok(page.navigations.at(-1)!.endsWith('/login'), 'an anonymous visit lands on the login');
      await logIn(page, ADMIN[0], 'a wrong password!');
      assert.match(await page.evaluate<string>(`document.querySelector('.error').textContent`), /wrong user name/);
      await logIn(page, ...ADMIN);
      assert.ok(page.navigations.at(-1)!.endsWith('/revenue'), 'logged in, the revenue page');
      const bars = await page.waitFor<number>(
        'the charts',
        `document.querySelectorAll('figure.chart svg rect').length`,
      );
      assert.ok(bars > 20, `bars: ${bars}`);
      for (const id of ['revenue', 'by-router', 'by-method']) {
        const { shown, csv } = await tableAndCsv(page, id);
        assert.ok(shown.length > 2, id);
        assert.equal(csv, shown, `${id}: the CSV is the table`);
      }
      const totals = await tableAndCsv(page, 'by-router');
      for (const row of totals.shown.slice(1)) {
        // In the asset's unit, exact, with the smallest unit beside it: USDC at 6 decimals, sat at 0.
        const [, asset, , amount, smallest] = row as [string, string, string, string, string];
        const decimals = asset === 'USDC' ? 6 : 0;
        const digits = smallest.padStart(decimals + 1, '0');
        const whole = Number(digits.slice(0, digits.length - decimals)).toLocaleString('en-US');
        const fraction = digits.slice(digits.length - decimals).replace(/0+$/, '');
        assert.is(amount, `${whole}${fraction ? `.${fraction}` : ''} ${asset}`, row.join(' '));
      }

      await page.goto(new URL('/routers', dash.url).href);
      assert.is(await rowClass(page, 'station'), 'bad', 'the router whose Last-Will came is red');
      assert.is(await rowClass(page, 'cafe-south'), 'warn', 'a damaged table and an unexplained gap: amber');
      assert.is(await rowClass(page, 'cafe-north'), '', 'cafe-north heard 20 s ago: not red');
      const { shown, csv } = await tableAndCsv(page, 'routers');
      assert.equal(csv, shown, 'routers: the CSV is the table');
      // 41 s later by the dashboard's clock cafe-north has been silent 61 s: past the 60 s setting, red.
      clock = start + 41_000;
      await page.goto(new URL('/routers', dash.url).href);
      assert.is(await rowClass(page, 'cafe-north'), 'bad', 'silent past the setting: red');
      assert.match(
        await page.evaluate<string>(`document.querySelector('#routers tbody tr').textContent`),
        /silent for 61 s/,
      );
      clock = start;

      await page.goto(new URL('/routers/cafe-north', dash.url).href);
      const sessions = await tableAndCsv(page, 'sessions');
      assert.equal(sessions.csv, sessions.shown, 'sessions: the CSV is the table');
      assert.equal(
        sessions.shown.slice(1).map((r) => r[0]),
        NORTH_MACS,
      );
      await page.click('#sessions tbody tr:first-child form[action$="/terminate"] button');
      await page.waitFor('the answer', `location.search.includes('action=') && document.querySelector('.ok, .error')`);
      assert.match(await page.evaluate<string>(`document.querySelector('.ok').textContent`), /the router did it/);
      assert.equal(
        received.map((c) => [c.cmd, c.args]),
        [['terminate', { mac: NORTH_MACS[0] }]],
      );
      const audit = await db.query<{ actor: string; router: string; command: string; ok: boolean }>(
        'SELECT actor, router, command, ok FROM fleet_audit',
      );
      assert.equal(audit, [{ actor: 'alice', router: 'cafe-north', command: 'terminate', ok: true }]);

      // A grant of 2 hours to the second session's device: seconds, with the request id as its idempotency key.
      await page.evaluate(`document.querySelector('#sessions tbody tr:nth-child(2) input[name=amount]').value = '2'`);
      await page.evaluate(
        `document.querySelector('#sessions tbody tr:nth-child(2) select[name=unit]').value = 'hours'`,
      );
      const before = await page.evaluate<string>('location.search');
      await page.click('#sessions tbody tr:nth-child(2) form[action$="/grant"] button');
      await page.waitFor(
        'the answer',
        `location.search !== ${JSON.stringify(before)} && location.search.includes('action=') && ` +
          `document.querySelector('.ok, .error')`,
      );
      assert.match(await page.evaluate<string>(`document.querySelector('.ok').textContent`), /grant/);
      assert.is(received[1]!.cmd, 'grant');
      assert.equal(
        { ...received[1]!.args, idempotency_key: 'x' },
        { mac: NORTH_MACS[1], seconds: 7200, idempotency_key: 'x' },
      );

      // The admin's own zone, Berlin, set on Settings: the pages (and their screenshots) show a fleet not in UTC.
      await page.goto(new URL('/settings', dash.url).href);
      await page.evaluate(`document.querySelector('input[name=zone]').value = 'Europe/Berlin'`);
      await page.click('form[action="/settings/time-zone"] button');
      await page.waitFor('the zone saved', `location.search.includes('saved=') && document.readyState === 'complete'`);

      // Every page fits a laptop and a phone: nothing wider than the screen but a table, scrolling in its own box.
      for (const [width, height, mobile] of [
        [1366, 900, false],
        [390, 844, true],
      ] as const) {
        await page.send('Emulation.setDeviceMetricsOverride', { width, height, mobile, deviceScaleFactor: 1 });
        for (const [name, path] of SCREENS) {
          await page.goto(new URL(path, dash.url).href);
          const wide = await page.evaluate<string[]>(`(() => {
            const w = document.documentElement.clientWidth;
            const out = document.documentElement.scrollWidth > w ? ['the page scrolls sideways'] : [];
            for (const e of document.querySelectorAll('body *')) {
              const inBox = e.parentElement.closest('.scroll');
              const r = e.getBoundingClientRect();
              if (!inBox && (r.right > w + 0.5 || r.left < -0.5)) out.push(e.tagName + '.' + e.className);
            }
            return out;
          })()`);
          assert.equal(wide, [], `${name} at ${width} px`);
          assert.match(
            await page.evaluate<string>(`document.querySelector('header .me').textContent`),
            /times in Europe\/Berlin/,
            `${name}: the zone shown`,
          );
          if (SHOTS) await page.screenshot(join(SHOTS, `${name}-${width}.png`));
        }
      }
      await page.send('Emulation.setDeviceMetricsOverride', {
        width: 1366,
        height: 900,
        mobile: false,
        deviceScaleFactor: 1,
      });

      // The operator sees the same router and no form.
      await page.click('header form button');
      await page.waitFor('logged out', `location.pathname === '/login' && document.readyState === 'complete'`);
      await logIn(page, ...OPERATOR);
      await page.goto(new URL('/routers/cafe-north', dash.url).href);
      assert.is(await page.evaluate<number>(`document.querySelectorAll('main form').length`), 0);
    } finally {
      await browser.close();
    }
  });

test.run();
