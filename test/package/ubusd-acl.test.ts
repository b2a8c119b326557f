// tier: peers
// The shipped ubusd ACL (files/usr/share/acl.d/sluice.json) enforced by a REAL ubusd: a non-root member of the portal
// group reaches purchase, quote, session and pricing and is refused everything else; a non-root non-member does not
// even see the object; root is not restricted. The embedded broker does not enforce ACLs (docs/ubus-broker.md), so
// this runs only with SLUICE_REAL_UBUSD=/path/to/ubusd (built from github:openwrt/ubus, never committed) and as root
// (to run clients as another uid with setpriv). The group in the file is replaced by `nogroup`, the unprivileged
// group every Debian has: ubusd resolves the name at load time, so this is the same rule for another gid.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLE, ensureBuilt } from '../daemon/harness.ts';
import { skipTest } from '../helpers/skip.ts';

const ubusd = process.env.SLUICE_REAL_UBUSD ?? '';
const ROOT = new URL('../../', import.meta.url).pathname;
const canRun = ubusd !== '' && process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
/** A test, or without a real ubusd a counted skip (CI builds no ubusd: an opt-in, its skip passes there). */
const aclTest = (name: string, fn: () => void): void =>
  canRun
    ? test(name, fn)
    : skipTest(test, name, 'needs SLUICE_REAL_UBUSD=/path/to/ubusd, root and setpriv', { ciInstalls: false });

const dir = mkdtempSync(join(tmpdir(), 'sluice-acl-'));
const socket = join(dir, 'ubus.sock');
const procs: ChildProcess[] = [];

/** `sluice ubus call` as uid/gid (65534 = nobody; gid 65534 = nogroup, 1 = daemon): exit status and output. */
function callAs(gid: number, method: string, args: object): { status: number | null; out: string } {
  const r = spawnSync(
    'setpriv',
    [
      '--reuid=65534',
      `--regid=${gid}`,
      '--clear-groups',
      process.execPath,
      BUNDLE,
      'ubus',
      '-s',
      socket,
      'call',
      'sluice',
      method,
      JSON.stringify(args),
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test.before(async () => {
  if (!canRun) return;
  ensureBuilt();
  // ubusd reads *.json from -A; each file must be root-owned and not group/world writable.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'acl.d'), { mode: 0o755 });
  const acl = JSON.parse(readFileSync(join(ROOT, 'files/usr/share/acl.d/sluice.json'), 'utf8'));
  assert.is(acl.group, 'sluice-portal');
  writeFileSync(join(dir, 'acl.d', 'sluice.json'), JSON.stringify({ ...acl, group: 'nogroup' }), { mode: 0o644 });
  writeFileSync(
    join(dir, 'sluice.uci'),
    `config sluice 'main'\n\toption state_dir '${join(dir, 'state')}'\n\toption ndsctl '/bin/false'\n` +
      `\toption portal 'opennds'\nconfig pricing 'time'\n\toption price_per_step '500'\n`,
  );
  procs.push(spawn(ubusd, ['-s', socket, '-A', join(dir, 'acl.d')], { stdio: 'ignore' }));
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  chmodSync(socket, 0o666);
  const daemon = spawn(
    process.execPath,
    [BUNDLE, 'daemon', '--config', join(dir, 'sluice.uci'), '--ubus-socket', socket],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  procs.push(daemon);
  let output = '';
  daemon.stdout!.on('data', (d) => (output += d));
  daemon.stderr!.on('data', (d) => (output += d));
  for (let i = 0; i < 400 && !output.includes('sluice running'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(output.includes('sluice running'), output);
});

test.after(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

aclTest("a group member reaches the portal's four methods", () => {
  assert.is(callAs(65534, 'pricing', {}).status, 0);
  assert.is(callAs(65534, 'quote', { steps: 2 }).status, 0);
  // Reaching the daemon is what counts: it answers NOT_FOUND for an unknown client, purchase refuses the payment.
  const session = callAs(65534, 'session', { mac: '02:00:00:00:0c:01' });
  assert.match(session.out, /ERR_SESSION_NOT_FOUND/);
  const purchase = callAs(65534, 'purchase', { mac: '02:00:00:00:0c:02', payment: { method: 'nope' } });
  assert.not.match(purchase.out, /Permission denied|permission/i);
  assert.match(purchase.out, /ERR_/);
});

aclTest('a group member is refused grant and every other admin or reader method', () => {
  for (const [method, args] of [
    ['grant', { mac: '02:00:00:00:0c:01', seconds: 60 }],
    ['terminate', { mac: '02:00:00:00:0c:01' }],
    ['logout', { user: 'x' }],
    ['reload', {}],
    ['stats', {}],
    ['sessions', {}],
  ] as const) {
    const r = callAs(65534, method, args);
    assert.ok(r.status !== 0, `${method} refused`);
    assert.match(r.out, /Permission denied|PERMISSION_DENIED|status 6/i, `${method}: ${r.out}`);
  }
});

aclTest('a non-root user outside the group does not see the object; root is not restricted', () => {
  const r = callAs(1, 'pricing', {});
  assert.ok(r.status !== 0);
  assert.match(r.out, /not found|NOT_FOUND|status 4/i, r.out);
  const root = spawnSync(
    process.execPath,
    [
      BUNDLE,
      'ubus',
      '-s',
      socket,
      'call',
      'sluice',
      'grant',
      JSON.stringify({ mac: '02:00:00:00:0c:01', seconds: 60 }),
    ],
    { encoding: 'utf8' },
  );
  assert.is(root.status, 0, root.stderr);
});

test.run();
