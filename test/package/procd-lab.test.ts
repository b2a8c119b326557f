// tier: lab
// The package under OpenWrt 24.10's REAL procd (with its ubusd, logd, uci, jsonfilter, opkg and base-files' rc.common
// and procd.sh), in the procd lab: `main.enabled` through every path an admin takes (docs/operations.md, "Switching
// sluice off and on", is this matrix), the log tag, and the secrets' move to /etc/config/sluice_secrets on upgrade. The
// lab is built from public sources by shared/labs/procd/build.sh into ${SLUICE_PEERS:-~/.cache/sluice-peers}/procd and
// booted by its ns.sh (as root, in private namespaces); neither is in this repository and CI cannot build it, so
// without the tree every cell is a counted skip. The cells themselves are test/package/procd-lab/matrix.sh.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../daemon/harness.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const peers = process.env.SLUICE_PEERS ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sluice-peers');
const tree = join(peers, 'procd', 'root');
const nsSh = process.env.SLUICE_PROCD_LAB_NS ?? join(ROOT, '..', 'shared', 'labs', 'procd', 'ns.sh');
const why = !existsSync(join(tree, 'sbin', 'procd'))
  ? `no procd lab tree at ${tree} (shared/labs/procd/build.sh builds it)`
  : !existsSync(nsSh)
    ? `no ns.sh at ${nsSh} (SLUICE_PROCD_LAB_NS)`
    : process.getuid?.() !== 0
      ? 'needs root (private namespaces)'
      : '';
// As the e2e files do: one test that passes and prints the reason (the runner shows `SKIP` lines even when green),
// and every cell a test.skip, so the summary counts them as skipped.
if (why)
  test('procd lab prerequisites', () => {
    console.log(`SKIP procd lab (main.enabled matrix, log tag): ${why}`);
  });
const run = why ? test.skip : test;

const ON = 'procs=1 instance=true service=yes trigger=yes ubus=yes';
const OFF = 'procs=0 instance=no service=yes trigger=yes ubus=no';
const GONE = 'procs=0 instance=no service=no trigger=no ubus=no';
/** path, the file's main.enabled (or the state asked for), what procd and the daemon must show after it. */
const CELLS: Array<[string, 'on' | 'off', string]> = [
  ['install', 'on', ON],
  ['save-apply', 'off', OFF],
  ['save-apply', 'on', ON],
  ['reload_config', 'off', OFF],
  ['reload_config', 'on', ON],
  ['init-reload', 'off', OFF],
  ['init-reload', 'on', ON],
  ['init-restart', 'off', OFF],
  ['init-restart', 'on', ON],
  ['init-start', 'off', OFF],
  ['init-start', 'on', ON],
  ['init-stop', 'on', GONE],
  ['init-stop-then-start', 'on', ON],
  ['init-stop', 'off', GONE],
  ['init-stop-then-start', 'off', OFF],
  ['ubus-reload', 'off', OFF],
  ['ubus-reload-then-save-apply', 'on', ON],
  ['sighup', 'off', OFF],
  ['sighup-then-save-apply', 'on', ON],
  ['respawn', 'off', OFF],
  ['respawn-then-save-apply', 'on', ON],
  ['disable', 'on', ON],
  ['enable', 'on', ON],
  ['reboot', 'on', ON],
  ['reboot', 'off', OFF],
  ['reboot-then-save-apply', 'on', ON],
  ['reboot-rc-disabled', 'on', GONE],
  ['opkg-upgrade', 'off', OFF],
  ['opkg-upgrade-then-save-apply', 'on', ON],
  ['secrets-in-use', 'on', ON],
  ['opkg-upgrade', 'on', ON],
];

let out = '';
/** test/package/procd-lab/quickstart.sh's output: docs/quickstart.md's router-side commands run as written. */
let qs = '';
const work = mkdtempSync(join(tmpdir(), 'sluice-procd-lab-'));

test.before(() => {
  if (why) return;
  ensureBuilt();
  execFileSync(process.execPath, [join(ROOT, 'scripts/package.mjs'), join(work, 'ipk')], { cwd: ROOT, stdio: 'pipe' });
  const ipk = readdirSync(join(work, 'ipk')).find((f) => /^sluice_.*\.ipk$/.test(f))!;
  const r = spawnSync('bash', [join(ROOT, 'test/package/procd-lab/matrix.sh'), nsSh, join(work, 'ipk', ipk)], {
    encoding: 'utf8',
    timeout: 540_000,
  });
  out = `${r.stdout}${r.stderr}`;
  for (const line of out.split('\n')) if (/^(CELL|TAGS|RESPAWNS|VERSION|SECRETS)/.test(line)) console.log(`# ${line}`);
  const q = spawnSync(
    'bash',
    [
      join(ROOT, 'test/package/procd-lab/quickstart.sh'),
      nsSh,
      join(ROOT, 'docs/quickstart.md'),
      join(work, 'ipk', ipk),
    ],
    { encoding: 'utf8', timeout: 300_000 },
  );
  qs = `${q.stdout}${q.stderr}`;
  for (const line of qs.split('\n')) if (/^(QS |QSSUB|QSCHECK)/.test(line)) console.log(`# ${line}`);
});
test.after(() => rmSync(work, { recursive: true, force: true }));

for (const [path, state, want] of CELLS) {
  run(`main.enabled ${state} via ${path}: ${want}`, () => {
    const lines = out.split('\n').filter((l) => l.startsWith(`CELL ${path} ${state} `));
    assert.ok(lines.length > 0, `cell ${path} ${state} ran\n${out.slice(-2000)}`);
    for (const line of lines) assert.ok(line.startsWith(`CELL ${path} ${state} ok ${want}`), line);
  });
}

run(
  'every line the daemon writes is tagged sluice[pid] in logread, none node[pid]; logread -e sluice shows them',
  () => {
    const m = /^TAGS sluice=(\d+) node=(\d+) logread_e=(\d+)$/m.exec(out);
    assert.ok(m, out.slice(-2000));
    assert.ok(Number(m[1]) > 0, 'sluice[pid] lines');
    assert.is(Number(m[2]), 0, 'node[pid] lines');
    assert.ok(Number(m[3]) >= Number(m[1]), 'logread -e sluice shows every sluice[pid] line');
  },
);

run('a daemon respawned with enabled 0 hands the switch to the init script: one start, no crash loop', () => {
  assert.match(out, /^RESPAWNS not_starting=1 crash_loop=0$/m);
});

run(
  'opkg upgrade from a release that kept secrets in /etc/config/sluice: the real uci moves every one, byte for ' +
    'byte, into a 0600 sluice_secrets',
  () => {
    assert.match(out, /^SECRETS moved=same left_in_sluice=0 mode=-rw------- script_left=no logged=1$/m);
  },
);

run(
  'the daemon runs on the moved secrets (RADIUS and the hook on, no problem but none), with no warning of a ' +
    'secret left behind',
  () => {
    assert.match(
      out,
      /^SECRETS problems=\[\s*\] exposed_warnings=0$/m,
      out
        .split('\n')
        .filter((l) => l.startsWith('SECRETS'))
        .join('\n'),
    );
  },
);

run(
  'a secret saved as LuCI saves it (commit of sluice_secrets + config.change for it) reloads the daemon, which ' +
    'reads it',
  () => {
    assert.match(out, /^SECRETS after_change=\[hook\.secret \]$/m);
  },
);

run(
  'the migration keeps a secret already in sluice_secrets over an older copy in sluice, and a second run ' +
    'changes nothing',
  () => {
    assert.match(out, /^SECRETS both=das-secret,rc=1, again=unchanged rc=0$/m);
  },
);

run('docs/quickstart.md steps 2-8, as written: every command exits 0, and the admin sees what the doc says', () => {
  assert.match(qs, /^DONE$/m, qs.slice(-2000));
  const failed = qs.split('\n').filter((l) => /^QS \d+ rc=[1-9]/.test(l));
  assert.equal(failed, [], qs.slice(-3000));
  const check = (name: string) => new RegExp(`^QSCHECK ${name} (.*)$`, 'm').exec(qs)?.[1];
  assert.equal(
    [check('step2-running'), check('step2-reconcile')],
    ['1', '1'],
    'logread -e sluice: "sluice running", "cannot reconcile with portal yet"',
  );
  assert.is(check('step3-price'), '500000');
  assert.is(check('step5-endpoint'), 'time,data,', 'GET / on the LAN endpoint lists the plans');
  assert.is(check('step5-portal'), '1', '/portal is the pay page');
  assert.is(
    check('step6-opennds'),
    "3,/usr/lib/opennds/theme_sluice.sh,'allow tcp port 2122',",
    "step 6's uci lines on openNDS's shipped config",
  );
  assert.is(check('step6-theme'), '#!', 'themespec_path names the ThemeSpec the package installed, executable');
  assert.equal(
    [check('step7-session'), check('step7-log')],
    ['1', '1'],
    'the grant is listed by sessions and logged "session started"',
  );
  assert.is(check('step8-off'), '0', 'enabled 0 + reload_config, the first after the install: stopped');
  assert.is(check('step8-on'), '1 1', 'on again, with the session of step 7');
  assert.is(check('step8-reboot'), '1 1', 'running after the reboot');
  assert.is(check('step8-reboot-session'), '1', 'the daemon comes back with the session');
  assert.is(
    check('step8-upgraded'),
    '1 1 500000 1',
    'r2 installed, running, the price set in step 3 kept, the session kept',
  );
  assert.is(
    check('step8-removed'),
    '0 init-gone journal-kept sluice,sluice-opkg,',
    'stopped, gone; the changed conffile and the journal stay',
  );
  assert.is(check('tags'), 'node=0');
});

run('the upgrade cells ran the later release', () => {
  assert.match(out, /^VERSION Version: .*-r9\d+$/m);
});

test.run();
