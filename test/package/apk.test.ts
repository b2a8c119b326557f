// tier: daemon
// `make apk`'s packages (OpenWrt 25.12, APKv3) built and installed by a REAL apk-tools 3 into an empty root: the
// metadata, every path with its mode and owner, conffiles with their hashes, the portal user, the scripts. apk-tools
// is not in Debian 12, so this runs only with SLUICE_APK=/path/to/apk (built from github:alpinelinux/apk-tools,
// never committed); docs/testing.md.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../daemon/harness.ts';

const apk = process.env.SLUICE_APK ?? '';
if (apk === '') console.log('package/apk.test.ts: skipped (set SLUICE_APK=/path/to/apk, apk-tools 3)');
const ROOT = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'sluice-apk-'));
const version = (() => {
  const mk = readFileSync(join(ROOT, 'Makefile'), 'utf8');
  return `${/^PKG_VERSION:=(.*)$/m.exec(mk)![1]}-r${/^PKG_RELEASE:=(.*)$/m.exec(mk)![1]}`;
})();
const run = (...args: string[]) => execFileSync(apk, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test.before(() => {
  if (apk === '') return;
  ensureBuilt();
  execFileSync(process.execPath, [join(ROOT, 'scripts/package.mjs'), '--apk', join(work, 'out')], {
    cwd: ROOT,
    env: { ...process.env, APK: apk },
    stdio: 'pipe',
  });
  // Stand-ins for the dependencies a router has (libc, node, luci-base): empty packages, so apk resolves them.
  mkdirSync(join(work, 'empty'));
  for (const name of ['libc', 'node', 'luci-base']) {
    run(
      'mkpkg',
      '--info',
      `name:${name}`,
      '--info',
      'version:1.0-r1',
      '--info',
      'arch:noarch',
      '--info',
      'description:stand-in',
      '--files',
      join(work, 'empty'),
      '--output',
      join(work, `${name}.apk`),
    );
  }
  run(
    '--root',
    join(work, 'root'),
    '--initdb',
    '--allow-untrusted',
    '--no-scripts',
    '--force-no-chroot',
    '--no-network',
    'add',
    ...['libc', 'node', 'luci-base'].map((n) => join(work, `${n}.apk`)),
    join(work, 'out', `sluice-${version}.apk`),
    join(work, 'out', `luci-app-sluice-${version}.apk`),
  );
});
test.after(() => rmSync(work, { recursive: true, force: true }));

test('metadata as package-pack.mk writes it: name, version, noarch, depends, scripts', () => {
  if (apk === '') return;
  const dump = run('adbdump', join(work, 'out', `sluice-${version}.apk`));
  assert.match(dump, /name: sluice\n/);
  assert.match(dump, new RegExp(`version: ${version.replace(/\./g, '\\.')}\\n`));
  assert.match(dump, /arch: noarch\n/);
  assert.match(dump, /depends: # 2 items\n\s+- libc\n\s+- node\n/);
  for (const s of ['post-install', 'post-upgrade', 'pre-deinstall']) assert.match(dump, new RegExp(`${s}: \\|`));
  assert.match(dump, /add_group_and_user\n\s+default_postinst/);
  assert.match(
    run('adbdump', join(work, 'out', `luci-app-sluice-${version}.apk`)),
    /depends: # 3 items\n\s+- libc\n\s+- luci-base\n\s+- sluice\n/,
  );
});

test('installed by apk: paths, modes, owners, the link, conffiles with hashes, the portal user', () => {
  if (apk === '') return;
  const root = join(work, 'root');
  const mode = (p: string) => {
    const st = lstatSync(join(root, p));
    return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
  };
  assert.is(mode('etc/config/sluice'), '600 0:0');
  assert.is(mode('etc/config/sluice_secrets'), '600 0:0');
  assert.is(mode('etc/uci-defaults/90-sluice-secrets'), '755 0:0');
  assert.is(mode('etc/uci-defaults/91-sluice-reload-config'), '755 0:0');
  assert.is(mode('etc/init.d/sluice'), '755 0:0');
  assert.is(mode('usr/share/sluice/sluice.mjs'), '755 0:0');
  assert.is(mode('usr/share/sluice/worker.js'), '644 0:0');
  assert.is(mode('usr/share/sluice/portal/index.html'), '644 0:0');
  assert.is(mode('usr/share/sluice/portal/portal.js'), '644 0:0');
  assert.is(mode('usr/share/sluice/portal/batch-page.js'), '644 0:0');
  assert.is(mode('usr/share/sluice/portal/batch.js'), '644 0:0');
  assert.is(mode('usr/lib/opennds/theme_sluice.sh'), '755 0:0');
  assert.is(mode('usr/lib/opennds/binauth_sluice.sh'), '755 0:0');
  assert.is(mode('lib/upgrade/keep.d/sluice'), '644 0:0');
  assert.is(mode('usr/share/acl.d/sluice.json'), '644 0:0');
  assert.is(mode('www/luci-static/resources/view/sluice/sessions.js'), '644 0:0');
  assert.is(mode('usr/bin/sluice'), '755 0:0');
  const hash = (p: string) =>
    createHash('sha256')
      .update(readFileSync(join(root, p)))
      .digest('hex');
  assert.is(
    readFileSync(join(root, 'lib/apk/packages/sluice.conffiles_static'), 'utf8'),
    `/etc/config/sluice ${hash('etc/config/sluice')}\n` +
      `/etc/config/sluice_secrets ${hash('etc/config/sluice_secrets')}\n`,
  );
  assert.is(
    readFileSync(join(root, 'lib/apk/packages/sluice.rusers'), 'utf8'),
    'sluice-portal=472:sluice-portal=472\n',
  );
  assert.match(
    readFileSync(join(root, 'lib/apk/packages/sluice.list'), 'utf8'),
    /^\/etc\/config\/sluice\n[\s\S]*\/usr\/share\/sluice\/sluice\.mjs\n/,
  );
  assert.match(run('--root', root, '--force-no-chroot', 'info', '-R', 'luci-app-sluice'), /sluice/);
});

test.run();
