// tier: peers
// The counter's staff login in a REAL LuCI 24.10: ubusd, rpcd and uhttpd with luci-base, built from public sources
// outside this repository (docs/luci-check.md, "Staff login"), run chrooted by test/package/luci-lab/run.sh with this
// repository's LuCI app and ACL files where the packages install them, the real daemon on its ubus socket. The login
// is made by docs/quickstart.md's "A staff login for the counter" commands, as written, on the lab's uci and uhttpd.
// Through uhttpd's /ubus (what LuCI's rpc.js sends) the staff login reaches exactly the role's methods and is refused
// every other sluice method, uci and file exec; each act is logged with its name; in headless Chromium it lands on
// the Counter page, sees no other sluice page, prints a batch, extends and ends a session, revokes the batch.
// Without the built tree (SLUICE_LUCI_ROOT, default ~/.cache/sluice-peers/luci/root), root or Chromium: counted skips.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLE, ensureBuilt } from '../daemon/harness.ts';
import { skipTest } from '../helpers/skip.ts';
import { Browser, browserUnavailableReason, type Page } from '../e2e/browser.ts';
import { METHODS } from '../../src/api/methods.ts';
import { until } from '../helpers/until.ts';

const REPO = new URL('../../', import.meta.url).pathname;
const LUCI_ROOT = process.env.SLUICE_LUCI_ROOT ?? join(homedir(), '.cache/sluice-peers/luci/root');
const PORT = 18000 + (process.pid % 1000);
const BASE = `http://127.0.0.1:${PORT}`;
const STAFF = JSON.parse(
  readFileSync(join(REPO, 'luci-app/root/usr/share/rpcd/acl.d/luci-app-sluice-staff.json'), 'utf8'),
)['luci-app-sluice-staff'] as { read: { ubus: { sluice: string[] } }; write: { ubus: { sluice: string[] } } };
const STAFF_METHODS = [...STAFF.read.ubus.sluice, ...STAFF.write.ubus.sluice];

function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (mount namespace, chroot)';
  if (!existsSync(join(LUCI_ROOT, 'usr/sbin/rpcd')) || !existsSync(join(LUCI_ROOT, 'usr/bin/uhttpd')))
    return `needs a LuCI 24.10 tree built from source at ${LUCI_ROOT} (SLUICE_LUCI_ROOT; docs/luci-check.md)`;
  if (spawnSync('busybox', ['true']).status !== 0) return 'needs busybox';
  return browserUnavailableReason();
}
const why = unavailable();
const labTest = (name: string, fn: () => Promise<void>): void =>
  why === null ? test(name, fn) : skipTest(test, name, why, { ciInstalls: false });

const work = mkdtempSync(join(tmpdir(), 'sluice-luci-staff-'));
const root = join(work, 'root');
let lab: ChildProcess | null = null;
let daemon: ChildProcess | null = null;
let daemonLog = '';
let browser: Browser | null = null;

/** A command on the "router" (the lab's chroot, in its mount namespace): busybox applets, uci, uhttpd -m. */
function onRouter(script: string): string {
  const r = spawnSync('nsenter', ['-t', String(lab!.pid), '-m', 'chroot', root, '/bin/sh', '-ec', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.is(r.status, 0, `${script}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

type RpcResult = { result?: [number, Record<string, unknown>?]; error?: { code: number; message: string } };

/** A JSON-RPC call to uhttpd's /ubus, as LuCI's rpc.js makes it. */
async function rpc(sid: string, object: string, method: string, args: object = {}): Promise<RpcResult> {
  const res = await fetch(`${BASE}/ubus`, {
    method: 'POST',
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'call', params: [sid, object, method, args] }),
  });
  return (await res.json()) as RpcResult;
}

async function login(username: string, password: string): Promise<string> {
  const r = await rpc('00000000000000000000000000000000', 'session', 'login', { username, password });
  const sid = r.result?.[1]?.ubus_rpc_session;
  assert.type(sid, 'string', JSON.stringify(r));
  return sid as string;
}

/** The ```sh block of docs/quickstart.md's "A staff login for the counter", as written. */
function quickstartStaffBlock(): string {
  const doc = readFileSync(join(REPO, 'docs/quickstart.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## A staff login for the counter'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the section has a sh block');
  return block![1]!.replace("'choose a password'", "'counter secret'");
}

test.before(async () => {
  if (why !== null) return;
  ensureBuilt();
  lab = spawn(join(REPO, 'test/package/luci-lab/run.sh'), [LUCI_ROOT, work, String(PORT), REPO], {
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  await until(() => existsSync(join(work, 'ready')), 20_000, 'uhttpd answers', 100);
  // The daemon on the lab's ubus socket, with the package's config file (no portal here: grants stay gate-pending).
  mkdirSync(join(work, 'state'));
  onRouter(
    `uci set sluice.main.state_dir='${join(work, 'state')}'; uci set sluice.main.ndsctl=/bin/false; ` +
      'uci set sluice.main.ndsctl_socket=off; uci set sluice.main.kernel_quota=0; uci commit sluice',
  );
  daemon = spawn(
    process.execPath,
    [
      BUNDLE,
      'daemon',
      '--config',
      join(root, 'etc/config/sluice'),
      '--ubus-socket',
      join(root, 'var/run/ubus/ubus.sock'),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  daemon.stdout!.on('data', (d) => (daemonLog += d));
  daemon.stderr!.on('data', (d) => (daemonLog += d));
  await until(() => daemonLog.includes('sluice running'), 20_000, 'sluice running', 100);
  // The admin makes the staff login as docs/quickstart.md says.
  onRouter(quickstartStaffBlock());
});

test.after(async () => {
  await browser?.close().catch(() => undefined);
  daemon?.kill('SIGTERM');
  if (lab?.pid) {
    try {
      process.kill(-lab.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  rmSync(work, { recursive: true, force: true });
});

labTest(
  "the quickstart's staff login reaches exactly the role's sluice methods through uhttpd, nothing of uci or " +
    'file exec, and each act is logged with its name',
  async () => {
    const admin = await login('root', 'admin');
    const staff = await login('counter', 'counter secret');
    const granted = await rpc(admin, 'sluice', 'grant', { mac: '02:00:00:00:0a:01', seconds: 3600 });
    assert.is(granted.result?.[0], 0, JSON.stringify(granted));
    // Every sluice method: the role's reach the daemon (any daemon answer), every other is refused by rpcd.
    for (const method of Object.keys(METHODS)) {
      if (method === 'terminate' || method === 'extend') continue; // acted on below, one by one
      const r = await rpc(staff, 'sluice', method, method === 'voucher_revoke' ? { batch: 'NOSUCH' } : {});
      if (STAFF_METHODS.includes(method)) assert.ok(r.result, `${method}: ${JSON.stringify(r)}`);
      else assert.is(r.error?.code, -32002, `${method} refused: ${JSON.stringify(r)}`);
    }
    for (const [object, method, args] of [
      ['uci', 'get', { config: 'sluice' }],
      ['uci', 'get', { config: 'sluice_secrets' }],
      ['uci', 'set', { config: 'sluice', section: 'main', values: { enabled: '0' } }],
      ['file', 'read', { path: '/etc/config/sluice' }],
      ['file', 'exec', { command: '/etc/init.d/sluice', params: ['stop'] }],
      ['rc', 'init', { name: 'sluice', action: 'stop' }],
    ] as const) {
      const r = await rpc(staff, object, method, args);
      // rpcd refuses the call (-32002), or, for `file` whose read the role has for one path, the path (status 6)
      assert.ok(r.error?.code === -32002 || r.result?.[0] === 6, `${object} ${method}: ${JSON.stringify(r)}`);
    }
    const qr = await rpc(staff, 'file', 'read', { path: '/usr/share/sluice/portal/qr.js' });
    assert.is(qr.result?.[0], 0, 'the ticket sheet may read the QR encoder');
    // The counter's acts, and what the daemon logged for each.
    const extend = await rpc(staff, 'sluice', 'extend', { mac: '02:00:00:00:0a:01', seconds: 600 });
    assert.is((extend.result?.[1]?.session as Record<string, unknown>)?.allotment, '4200');
    const none = await rpc(staff, 'sluice', 'extend', { mac: '02:00:00:00:0a:09', seconds: 600 });
    assert.is((none.result?.[1]?.error as Record<string, unknown>)?.code, 'ERR_SESSION_NOT_FOUND', 'no free session');
    const made = await rpc(staff, 'sluice', 'voucher_create', { plan: 'time', count: 2, steps: 1 });
    assert.is((made.result?.[1]?.codes as string[]).length, 2);
    const ended = await rpc(staff, 'sluice', 'terminate', { mac: '02:00:00:00:0a:01' });
    assert.is((ended.result?.[1]?.session as Record<string, unknown>)?.state, 'TERMINATED');
    await until(() => daemonLog.includes('method=terminate'), 20_000, 'the acts are logged', 100);
    const acts = daemonLog.split('\n').filter((l) => l.includes('admin call'));
    assert.ok(
      acts.some((l) => /method=grant .*login=root result=ok/.test(l)),
      acts.join('\n'),
    );
    for (const re of [
      /method=extend mac=02:00:00:00:0a:01 seconds=600 login=counter result=ok/,
      /method=extend mac=02:00:00:00:0a:09 seconds=600 login=counter result=ERR_SESSION_NOT_FOUND/,
      /method=voucher_create plan=time count=2 steps=1 login=counter result=ok/,
      /method=terminate mac=02:00:00:00:0a:01 login=counter result=ok/,
    ]) {
      assert.ok(
        acts.some((l) => re.test(l)),
        `${re}\n${acts.join('\n')}`,
      );
    }
    assert.not.ok(daemonLog.includes(staff), 'the rpcd session id is never logged');
    // A made-up session id is not a login: refused, nothing done.
    const lab2 = spawnSync(
      process.execPath,
      [
        BUNDLE,
        'ubus',
        '-s',
        join(root, 'var/run/ubus/ubus.sock'),
        'call',
        'sluice',
        'voucher_create',
        JSON.stringify({ plan: 'time', count: 1, steps: 1, ubus_rpc_session: 'f'.repeat(32) }),
      ],
      { encoding: 'utf8' },
    );
    assert.match(`${lab2.stdout}${lab2.stderr}`, /ERR_CALLER_UNKNOWN/);
  },
);

labTest(
  'in Chromium the staff login lands on the Counter page, sees no other sluice page, prints a batch, extends and ' +
    'ends a session, revokes the batch',
  async () => {
    const admin = await login('root', 'admin');
    await rpc(admin, 'sluice', 'grant', { mac: '02:00:00:00:0a:02', seconds: 3600 });
    browser = await Browser.launch(null);
    const page: Page = await browser.newPage({ width: 1400, height: 1000, mobile: false });
    // Every ubus call rpcd refused, as the page saw it (LuCI takes a refusal for an expired login).
    await page.send('Page.addScriptToEvaluateOnNewDocument', {
      source: `window.__denied = []; const send = XMLHttpRequest.prototype.send;
        XMLHttpRequest.prototype.send = function (body) {
          this.addEventListener('load', () => { if (String(this.responseText).includes('-32002'))
            window.__denied.push(String(body)); });
          return send.call(this, body);
        };`,
    });
    await page.goto(`${BASE}/cgi-bin/luci/`);
    await page.waitFor('the login form', `!!document.querySelector('input[name=luci_username]')`);
    await page.evaluate(`(() => {
      document.querySelector('input[name=luci_username]').value = 'counter';
      document.querySelector('input[name=luci_password]').value = 'counter secret';
      document.querySelector('form').submit();
    })()`);
    await page.waitFor('the Counter page', `document.querySelector('#view h2')?.textContent === 'Counter'`, 30_000);
    const menu = await page.evaluate<string[]>(
      `[...document.querySelectorAll('#topmenu a, .main-left a, #mainmenu a')].map((a) => a.getAttribute('href'))`,
    );
    assert.ok(
      menu.some((h) => h?.endsWith('/admin/services/sluice_counter')),
      menu.join(' '),
    );
    assert.not.ok(
      menu.some((h) => /\/admin\/services\/sluice(\/|$)/.test(h ?? '')),
      `no admin page of sluice: ${menu.join(' ')}`,
    );
    // An admin page typed in the address bar: LuCI does not show it to this login.
    // Extend the session by 10 minutes, then end it.
    await page.waitFor('the session row', `!!document.querySelector('tr[data-mac="02:00:00:00:0a:02"]')`);
    await page.evaluate(`(() => {
      const row = document.querySelector('tr[data-mac="02:00:00:00:0a:02"]');
      row.querySelector('input[name=extend_amount]').value = '10';
      row.querySelector('select[name=extend_unit]').value = 'min';
      row.__typedIn = true;
    })()`);
    // The page redraws the table every 10 s: what was typed survives the redraw.
    await page.waitFor(
      'a redraw of the sessions',
      `!document.querySelector('tr[data-mac="02:00:00:00:0a:02"]')?.__typedIn`,
      40_000,
    );
    assert.equal(
      await page.evaluate<string[]>(`(() => {
        const row = document.querySelector('tr[data-mac="02:00:00:00:0a:02"]');
        const value = (name) => row.querySelector('[name=' + name + ']').value;
        return [value('extend_amount'), value('extend_unit')];
      })()`),
      ['10', 'min'],
    );
    await page.click('tr[data-mac="02:00:00:00:0a:02"] .cbi-button-apply');
    await page
      .waitFor('the extension', `document.body.textContent.includes('Added 10 minutes to the session of')`)
      .catch(async (e: Error) => {
        await page.screenshot(join(tmpdir(), 'sluice-counter-fail.png'));
        throw new Error(`${e.message}\n${await page.evaluate<string>('JSON.stringify(window.__denied)')}`);
      });
    // Print a batch of 3 tickets.
    await page.evaluate(`(() => {
      document.querySelector('input[name=count]').value = '3';
      window.open = () => ({ document: { open() {}, write(h) { window.__sheet = h; }, close() {} }, focus() {},
        print() {} });
      window.confirm = () => true;
    })()`);
    await page.click('.sluice-counter-form .cbi-button-save');
    await page.waitFor('the codes', `!!document.querySelector('#sluice-counter-made pre')`);
    const codes = await page.evaluate<string>(`document.querySelector('#sluice-counter-made pre').textContent`);
    assert.is(codes.split('\n').length, 3);
    await page.click('#sluice-counter-made .cbi-button-action');
    const sheet = await page.waitFor<string>('the ticket sheet', 'window.__sheet');
    for (const code of codes.split('\n')) assert.ok(sheet.includes(code), code);
    assert.ok(sheet.includes('<img alt="" src="data:image/svg+xml,') || !sheet.includes('/portal'), 'QR when a link');
    await page.screenshot(join(work, 'counter.png'));
    // End the session, revoke the batch.
    await page.click('tr[data-mac="02:00:00:00:0a:02"] .cbi-button-remove');
    await page.waitFor('the end', `document.body.textContent.includes('Session of 02:00:00:00:0a:02 ended')`);
    await page.click('#sluice-counter-batches .cbi-button-remove');
    await page.waitFor('the revocation', `document.body.textContent.includes('unused tickets no longer work')`);
    await until(() => daemonLog.includes('method=voucher_revoke'), 20_000, 'logged', 100);
    const acts = daemonLog.split('\n').filter((l) => l.includes('login=counter'));
    for (const m of ['extend mac=02:00:00:00:0a:02 seconds=600', 'voucher_create', 'terminate', 'voucher_revoke'])
      assert.ok(
        acts.some((l) => l.includes(`method=${m}`)),
        `${m}\n${acts.join('\n')}`,
      );
    // The admin pages typed in the address bar: LuCI answers this login with an error, not the page.
    for (const path of ['settings', 'sessions', 'vouchers', 'cashu']) {
      const got = await page.evaluate<{ status: number; text: string }>(
        `fetch('/cgi-bin/luci/admin/services/sluice/${path}')` +
          `.then(async (r) => ({ status: r.status, text: await r.text() }))`,
      );
      assert.ok(got.status >= 400, `${path}: ${got.status}`);
      assert.not.ok(got.text.includes(`sluice/${path}`), `${path}: the view is not loaded`);
    }
  },
);

test.run();
