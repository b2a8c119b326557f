// tier: daemon
// The files shipped in the package: the UCI defaults load cleanly, the init script is valid sh with the procd
// essentials, and the package Makefile installs what the init script runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { configFromUciPartial } from '../../src/config/load.ts';
import { loadConfig } from '../../src/config/load-file.ts';
import { parseUci } from '../../src/config/uci.ts';
import { serializeUci } from '../../src/config/serialize.ts';
import { testNeeding } from '../helpers/skip.ts';

const root = new URL('../../', import.meta.url).pathname;
const CONFIG = `${root}files/etc/config/sluice`;
const INIT = `${root}files/etc/init.d/sluice`;
const SECRETS = `${root}files/etc/config/sluice_secrets`;

test('files/etc/config/sluice loads cleanly; time is the default (first) plan', async () => {
  const c = await loadConfig(CONFIG, { hostname: 'openwrt' });
  assert.equal(
    c.pricing.map((p) => [p.id, p.metric]),
    [
      ['time', 'seconds'],
      ['data', 'bytes'],
    ],
  );
  assert.is(c.pricing[0]!.stepSize, 15n * 60n);
  assert.is(c.pricing[1]!.stepSize, 100n * 1024n * 1024n);
  assert.equal([c.radius.enabled, c.mqtt.enabled, c.escrow.enabled], [false, false, false]);
  assert.is(c.main.stateDir, '/etc/sluice');
  assert.is(c.main.routerId, 'openwrt');
});

test('the header of files/etc/config/sluice says what the daemon does with a bad file, effect by effect', () => {
  const text = readFileSync(CONFIG, 'utf8');
  const header = text.slice(0, text.indexOf('\nconfig ')).replace(/\n# ?/g, ' ');
  // The shipped file with one bad value of each kind: the daemon runs on the rest (the header said it keeps
  // the previous file, which is what happens only to a file that is not UCI at all).
  const bad = text
    .replace("option poll_interval '2'", "option poll_interval 'soon'")
    .replace("option price_per_step '100000'", "option price_per_step 'free'")
    .replace("config hook 'hook'\n\toption enabled '0'", "config hook 'hook'\n\toption enabled '1'");
  const { config, problems } = configFromUciPartial(parseUci(bad), { hostname: 'openwrt' });
  assert.equal(
    problems.map((p) => `${p.path} ${p.effect}`),
    ['main.poll_interval default-used', 'pricing[data].price_per_step plan-left-out', 'hook.secret section-disabled'],
  );
  assert.equal(
    [config.main.pollIntervalMs, config.pricing.map((p) => p.id), config.hook.enabled],
    [2000, ['time'], false],
  );
  for (const words of [
    'runs on the valid part',
    'bad main or limits option -> its default',
    'bad plan -> left out',
    'enabled radius/mqtt/escrow/x402/hook section -> that section off',
    'config problem ignored',
    'cannot be read or is not UCI at all is refused: a reload keeps the running configuration, a start fails',
  ]) {
    assert.ok(header.includes(words), words);
  }
  assert.not.match(header, /invalid it logs every problem and keeps running on the previous one/);
});

test('files/etc/config/sluice survives a uci commit round trip (what LuCI Save & Apply writes)', async () => {
  const pkg = parseUci(readFileSync(CONFIG, 'utf8'));
  const rewritten = serializeUci(pkg);
  const c = await loadConfig('rewritten', {
    hostname: 'openwrt',
    secretsPath: SECRETS,
    readFile: async (p) => (p === 'rewritten' ? rewritten : readFileSync(p, 'utf8')),
  });
  assert.is(c.pricing.length, 2);
});

test('init script: sh -n passes and the procd essentials are there', () => {
  execFileSync('sh', ['-n', INIT]);
  const text = readFileSync(INIT, 'utf8');
  assert.ok(text.startsWith('#!/bin/sh /etc/rc.common\n'));
  for (const line of [
    'START=95',
    'STOP=10',
    'USE_PROCD=1',
    'config_load sluice',
    'config_get_bool enabled main enabled 1',
    'procd_set_param command "$PROG" daemon --config "$CONFIG"',
    'procd_set_param env SLUICE_INIT=/etc/init.d/sluice',
    'procd_set_param respawn',
    'procd_set_param stdout 1',
    'procd_set_param stderr 1',
    'procd_set_param term_timeout',
    'procd_set_param reload_signal HUP',
    'procd_set_param file "$CONFIG" "$SECRETS"',
    'procd_add_reload_trigger sluice sluice_secrets',
  ]) {
    assert.ok(text.includes(line), line);
  }
  // procd tags the instance's log lines with the command's basename: sluice[pid], not node[pid]
  assert.ok(text.includes('PROG=/usr/bin/sluice'));
  assert.ok(text.includes('CONFIG=/etc/config/sluice'));
  assert.ok(text.includes('SECRETS=/etc/config/sluice_secrets'));
  // reload: enabled 0 starts (no instance: procd stops the daemon, keeps the trigger); otherwise the daemon's own
  // reload, and a restart when it names restart-only options.
  const reload = /reload_service\(\) \{\n([\s\S]*?)\n\}/.exec(text)?.[1] ?? '';
  for (const line of [
    'config_get_bool enabled main enabled 1',
    'ubus -t 30 call sluice reload',
    "jsonfilter -e '@.restart_required[*]'",
    'start',
  ]) {
    assert.ok(reload.includes(line), `reload_service: ${line}`);
  }
});

// Without shellcheck (a fresh Debian): a counted skip; in CI, which installs it, a failure (test/helpers/skip.ts).
testNeeding(test, ['shellcheck'], 'init script passes shellcheck (Debian shellcheck)', () => {
  const r = spawnSync('shellcheck', ['--severity=style', INIT], { encoding: 'utf8' });
  assert.ok(!r.error, 'shellcheck is installed (.ci/run installs it)');
  assert.is(r.status, 0, r.stdout);
});

testNeeding(test, ['shellcheck'], '/usr/bin/sluice (the command procd runs) passes shellcheck as sh', () => {
  const r = spawnSync('shellcheck', ['--severity=style', '-s', 'sh', `${root}files/usr/bin/sluice`], {
    encoding: 'utf8',
  });
  assert.is(r.status, 0, r.stdout);
});

// Run by default_postinst as `. script` in a subshell under ash; the migration itself runs under the real uci in the
// procd lab (test/package/procd-lab.test.ts): CI has no uci.
testNeeding(
  test,
  ['shellcheck'],
  'uci-defaults scripts pass shellcheck as sh (the secrets move, the reload_config baseline)',
  () => {
    for (const f of ['90-sluice-secrets', '91-sluice-reload-config']) {
      const r = spawnSync('shellcheck', ['--severity=style', '-s', 'sh', `${root}files/etc/uci-defaults/${f}`], {
        encoding: 'utf8',
      });
      assert.is(r.status, 0, `${f}: ${r.stdout}`);
    }
  },
);

test('package Makefile installs the bundle, worker, wrapper, init script and conffile', () => {
  const mk = readFileSync(`${root}Makefile`, 'utf8');
  for (const s of [
    'include $(TOPDIR)/rules.mk',
    'PKG_NAME:=sluice',
    'PKG_VERSION:=0.1.0',
    'DEPENDS:=+node',
    'PKGARCH:=all',
    '/etc/config/sluice',
    'dist/sluice.mjs',
    'dist/usage-worker.mjs',
    '/usr/share/sluice',
    '/usr/bin/sluice',
    '$(eval $(call BuildPackage,sluice))',
  ]) {
    assert.ok(mk.includes(s), s);
  }
  // Outside an SDK the same file offers developer targets; `make -n` proves it parses and wires them.
  const dry = execFileSync('make', ['-n', '-C', root, 'build', 'test'], { encoding: 'utf8' });
  assert.match(dry, /npm run build/);
  assert.match(dry, /npm test/);
});

test.run();
