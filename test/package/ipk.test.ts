// tier: daemon
// `make ipk`'s packages, unpacked as opkg does: outer tar.gz of debian-binary, control.tar.gz, data.tar.gz; control
// fields and conffiles as the Makefiles say; every file's path, mode and owner; ubusd's ACL; and the bundle inside
// runs as the daemon (workers found next to it) against the ubus broker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { METHODS } from '../../src/api/methods.ts';
import { DaemonLab, ensureBuilt } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
// @ts-expect-error plain JavaScript build script without types
import { readLmo, sfhHash } from '../../scripts/lmo.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'sluice-ipk-'));
const mk = readFileSync(join(ROOT, 'Makefile'), 'utf8');
const version = `${/^PKG_VERSION:=(.*)$/m.exec(mk)![1]}-r${/^PKG_RELEASE:=(.*)$/m.exec(mk)![1]}`;

interface Entry {
  mode: string;
  owner: string;
  size: number;
  path: string;
  link?: string;
}

/** `tar tvzf` of a tar.gz buffer or file: mode string, owner, size, path, link target. */
function listing(file: string): Entry[] {
  return execFileSync('tar', ['--numeric-owner', '-tvzf', file], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => {
      const m = /^(\S+) (\S+)\s+(\d+) \S+ \S+ (.+?)(?: -> (.+))?$/.exec(line)!;
      return { mode: m[1]!, owner: m[2]!, size: Number(m[3]), path: m[4]!, ...(m[5] !== undefined && { link: m[5] }) };
    });
}

function unpack(name: string): { dir: string; control: Record<string, string>; files: Entry[]; controlFiles: Entry[] } {
  const ipk = join(work, 'out', `${name}_${version}_all.ipk`);
  const dir = join(work, name);
  execFileSync('mkdir', ['-p', join(dir, 'pkg'), join(dir, 'control'), join(dir, 'root')]);
  assert.equal(
    listing(ipk).map((e) => e.path),
    ['./debian-binary', './data.tar.gz', './control.tar.gz'],
    'outer members, in ipkg-build order',
  );
  execFileSync('tar', ['-xzf', ipk, '-C', join(dir, 'pkg')]);
  assert.is(readFileSync(join(dir, 'pkg', 'debian-binary'), 'utf8'), '2.0\n');
  execFileSync('tar', ['-xzf', join(dir, 'pkg', 'control.tar.gz'), '-C', join(dir, 'control')]);
  execFileSync('tar', ['-xzf', join(dir, 'pkg', 'data.tar.gz'), '-C', join(dir, 'root')]);
  const control: Record<string, string> = {};
  let last = '';
  for (const line of readFileSync(join(dir, 'control', 'control'), 'utf8').split('\n')) {
    if (line.startsWith(' ')) control[last] += `\n${line.slice(1)}`;
    else if (line) {
      const i = line.indexOf(': ');
      last = line.slice(0, i);
      control[last] = line.slice(i + 2);
    }
  }
  return {
    dir,
    control,
    files: listing(join(dir, 'pkg', 'data.tar.gz')),
    controlFiles: listing(join(dir, 'pkg', 'control.tar.gz')),
  };
}

test.before(() => {
  ensureBuilt();
  execFileSync(process.execPath, [join(ROOT, 'scripts/package.mjs'), join(work, 'out')], { cwd: ROOT, stdio: 'pipe' });
});
test.after(() => rmSync(work, { recursive: true, force: true }));

test('sluice ipk: control fields, conffiles, maintainer scripts', () => {
  const { control, controlFiles, dir } = unpack('sluice');
  assert.equal(Object.keys(control), [
    'Package',
    'Version',
    'Depends',
    'Source',
    'SourceName',
    'License',
    'Section',
    'Require-User',
    'SourceDateEpoch',
    'Architecture',
    'Installed-Size',
    'Description',
  ]);
  assert.is(control.Package, 'sluice');
  assert.is(control.Version, version);
  assert.is(control.Depends, 'libc, node');
  assert.is(control.Architecture, 'all');
  assert.is(control.Section, 'net');
  assert.is(control['Require-User'], 'sluice-portal=472:sluice-portal=472');
  const dataSize = execFileSync('sh', ['-c', `zcat < '${join(dir, 'pkg', 'data.tar.gz')}' | wc -c`], {
    encoding: 'utf8',
  }).trim();
  assert.is(control['Installed-Size'], dataSize, 'Installed-Size is the data tar size, as ipkg-build computes it');
  assert.match(control.Description!, /^Pay-per-use WiFi[^\n]*\n[\s\S]*openNDS/);
  assert.is(
    readFileSync(join(dir, 'control', 'conffiles'), 'utf8'),
    '/etc/config/sluice\n/etc/config/sluice_secrets\n',
  );
  const modes = Object.fromEntries(controlFiles.map((e) => [e.path, `${e.mode} ${e.owner}`]));
  assert.equal(modes, {
    './': 'drwxr-xr-x 0/0',
    './conffiles': '-rw-r--r-- 0/0',
    './control': '-rw-r--r-- 0/0',
    './postinst': '-rwxr-xr-x 0/0',
    './prerm': '-rwxr-xr-x 0/0',
  });
  const postinst = readFileSync(join(dir, 'control', 'postinst'), 'utf8');
  assert.match(postinst, /default_postinst "\$0" "\$@"/, 'enables the service and adds the portal user (Require-User)');
  execFileSync('sh', ['-n', join(dir, 'control', 'postinst')]);
  execFileSync('sh', ['-n', join(dir, 'control', 'prerm')]);
});

test('sluice ipk: every path with its mode and owner; the SDK recipe, run, installs the same', () => {
  const { files } = unpack('sluice');
  const got = files
    .filter((e) => !e.mode.startsWith('d'))
    .map((e) => `${e.mode} ${e.owner} ${e.path}${e.link ? ` -> ${e.link}` : ''}`);
  assert.equal(
    got.sort(),
    [
      '-rw------- 0/0 ./etc/config/sluice',
      '-rw------- 0/0 ./etc/config/sluice_secrets',
      '-rw-r--r-- 0/0 ./lib/upgrade/keep.d/sluice',
      '-rw-r--r-- 0/0 ./usr/share/acl.d/sluice.json',
      '-rw-r--r-- 0/0 ./usr/share/sluice/cashu.mjs',
      '-rw-r--r-- 0/0 ./usr/share/sluice/evm.mjs',
      '-rw-r--r-- 0/0 ./usr/share/sluice/mqtt.mjs',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/batch-page.js',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/batch.js',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/cashu-page.js',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/devices.js',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/elsewhere.js',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/index.html',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/portal.js',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/qr.js',
      '-rw-r--r-- 0/0 ./usr/share/sluice/portal/restore.js',
      '-rw-r--r-- 0/0 ./usr/share/sluice/usage-worker.mjs',
      '-rw-r--r-- 0/0 ./usr/share/sluice/worker.js',
      '-rwxr-xr-x 0/0 ./etc/init.d/sluice',
      '-rwxr-xr-x 0/0 ./etc/uci-defaults/90-sluice-secrets',
      '-rwxr-xr-x 0/0 ./etc/uci-defaults/91-sluice-reload-config',
      '-rwxr-xr-x 0/0 ./usr/lib/opennds/binauth_sluice.sh',
      '-rwxr-xr-x 0/0 ./usr/lib/opennds/theme_sluice.sh',
      '-rwxr-xr-x 0/0 ./usr/share/sluice/sluice.mjs',
      '-rwxr-xr-x 0/0 ./usr/bin/sluice',
      // sluice's code split where it is loaded later (scripts/build.mjs): every chunk the build made, and no other.
      ...readdirSync(join(ROOT, 'dist'))
        .filter((f) => f.startsWith('sluice-'))
        .map((f) => `-rw-r--r-- 0/0 ./usr/share/sluice/${f}`),
    ].sort(),
  );
  for (const e of files.filter((f) => f.mode.startsWith('d')))
    assert.is(`${e.mode} ${e.owner}`, 'drwxr-xr-x 0/0', e.path);
  // Every file of the pay page, as the tree and the build have it (scripts/package.mjs copies the directory).
  for (const dir of ['files/usr/share/sluice/portal', 'dist/portal'])
    for (const name of readdirSync(join(ROOT, dir)))
      assert.ok(
        files.some((f) => f.path === `./usr/share/sluice/portal/${name}` && f.mode === '-rw-r--r--'),
        `${dir}/${name} is in the ipk, 0644`,
      );
  // Package/sluice/install of the SDK recipe, run as the SDK runs it (OpenWrt's INSTALL_* macros, rules.mk), installs
  // the same files with the same modes.
  const install = /define Package\/sluice\/install\n([\s\S]*?)^endef/m.exec(mk)![1]!;
  const sdkRoot = join(work, 'sdk-root');
  const script = install
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) =>
      l
        .replaceAll('$(INSTALL_DIR)', 'install -d -m0755')
        .replaceAll('$(INSTALL_BIN)', 'install -m0755')
        .replaceAll('$(INSTALL_DATA)', 'install -m0644')
        .replaceAll('$(INSTALL_CONF)', 'install -m0600')
        .replaceAll('$(LN)', 'ln -sf')
        .replaceAll('$(1)', sdkRoot),
    )
    .join('\n');
  assert.not.match(script, /\$\(/, 'every macro of the recipe is known here');
  execFileSync('sh', ['-ec', script], { cwd: ROOT });
  const sdkFiles = execFileSync('find', ['.', '!', '-type', 'd', '-printf', '%M %p %l\n'], {
    cwd: sdkRoot,
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .sort();
  const ipkFiles = files
    .filter((e) => !e.mode.startsWith('d'))
    .map((e) => `${e.mode} ${e.path}${e.link ? ` ${e.link}` : ''}`.trim())
    .sort();
  assert.equal(sdkFiles, ipkFiles, 'the SDK recipe installs what the ipk holds');
});

test('make package-files stages the files the packages install', () => {
  const stage = join(work, 'stage');
  // NPM=true: the bundle is built already (ensureBuilt), and a build now would rewrite dist/ under other tests.
  execFileSync('make', ['-s', 'package-files', `STAGE=${stage}`, 'NPM=true'], { cwd: ROOT, stdio: 'pipe' });
  const staged = execFileSync('find', ['.', '!', '-type', 'd'], { cwd: stage, encoding: 'utf8' }).trim().split('\n');
  const packaged = [...unpack('sluice').files, ...unpack('luci-app-sluice').files]
    .filter((e) => !e.mode.startsWith('d'))
    .map((e) => e.path);
  assert.equal(staged.sort(), packaged.sort());
  for (const p of [
    './usr/share/sluice/evm.mjs',
    './usr/share/sluice/portal/batch.js',
    './www/luci-static/resources/sluice/common.js',
  ])
    assert.ok(staged.includes(p), p);
});

test('luci-app-sluice ipk: control, paths under /www and /usr/share, every file 0644 root', () => {
  const { control, files } = unpack('luci-app-sluice');
  assert.is(control.Package, 'luci-app-sluice');
  assert.is(control.Depends, 'libc, luci-base, sluice');
  assert.is(control.Section, 'luci');
  const paths = files.filter((e) => !e.mode.startsWith('d')).map((e) => e.path);
  for (const p of [
    './www/luci-static/resources/view/sluice/sessions.js',
    './www/luci-static/resources/view/sluice/settings.js',
    './www/luci-static/resources/sluice/rules.json',
    './www/luci-static/resources/sluice/common.js',
    './www/luci-static/resources/view/status/include/90_sluice.js',
    './usr/share/luci/menu.d/luci-app-sluice.json',
    './usr/share/rpcd/acl.d/luci-app-sluice.json',
    // the counter's staff role and its page
    './usr/share/rpcd/acl.d/luci-app-sluice-staff.json',
    './www/luci-static/resources/view/sluice/counter.js',
    './www/luci-static/resources/sluice/tickets.js',
  ]) {
    assert.ok(paths.includes(p), p);
  }
  for (const e of files)
    assert.is(`${e.mode} ${e.owner}`, e.mode.startsWith('d') ? 'drwxr-xr-x 0/0' : '-rw-r--r-- 0/0', e.path);
});

test('luci-i18n-sluice-de ipk: the compiled German catalog where LuCI looks for it', () => {
  const { control, files, dir } = unpack('luci-i18n-sluice-de');
  assert.is(control.Depends, 'libc, luci-app-sluice');
  assert.is(control.Section, 'luci');
  assert.equal(
    files.filter((e) => !e.mode.startsWith('d')).map((e) => `${e.mode} ${e.owner} ${e.path}`),
    ['-rw-r--r-- 0/0 ./usr/lib/lua/luci/i18n/sluice.de.lmo'],
  );
  const lmo = readLmo(readFileSync(join(dir, 'root', 'usr/lib/lua/luci/i18n/sluice.de.lmo')));
  assert.is(lmo.get(sfhHash(Buffer.from('Disconnect'))), 'Trennen');
});

test('two builds of the same tree are byte-identical (fixed mtime, owners, order, gzip headers)', () => {
  execFileSync(process.execPath, [join(ROOT, 'scripts/package.mjs'), join(work, 'again')], {
    cwd: ROOT,
    stdio: 'pipe',
  });
  for (const f of readdirSync(join(work, 'out'))) {
    assert.ok(readFileSync(join(work, 'out', f)).equals(readFileSync(join(work, 'again', f))), f);
  }
});

test(
  "ubusd ACL: a group, only the portal's methods, each one " + 'a sluice method; root-owned and not writable by others',
  () => {
    const { dir, files } = unpack('sluice');
    const acl = JSON.parse(readFileSync(join(dir, 'root', 'usr/share/acl.d/sluice.json'), 'utf8'));
    // The keys ubusd_acl.c reads: user or group, access.<object>.methods (also subscribe/publish/listen/send: none
    // here).
    assert.equal(Object.keys(acl).sort(), ['access', 'group']);
    assert.is(acl.group, 'sluice-portal');
    assert.equal(Object.keys(acl.access), ['sluice']);
    assert.equal(acl.access.sluice.methods, [
      'purchase',
      'receipt',
      'quote',
      'session',
      'pricing',
      'batch_channel',
      'batch_refund',
    ]);
    for (const m of acl.access.sluice.methods) {
      assert.ok(METHODS[m], `${m} exists`);
      assert.is(METHODS[m]!.adminOnly, false, `${m} is not an admin method`);
    }
    // ubusd skips a file not owned by root:root or writable by group/others, or executable by others.
    const entry = files.find((f) => f.path === './usr/share/acl.d/sluice.json')!;
    assert.is(entry.owner, '0/0');
    assert.not.match(entry.mode.slice(4), /w|x/);
    assert.is(statSync(join(ROOT, 'files/usr/share/acl.d/sluice.json')).isFile(), true);
  },
);

test(
  "the ipk's /usr/bin/sluice runs the daemon as procd starts it: starts, serves ubus and the packaged pay page, " +
    'meters with its workers',
  async () => {
    const { dir } = unpack('sluice');
    const port = await freePort();
    // x402 and the LAN endpoint on (the facilitator is never asked here): the pay page is found next to the bundle.
    // The portal over its control socket: what is checked is the packaged bundle and worker, not the ndsctl command
    // path (a node process per tick, which on a loaded machine can starve the meter past any bound).
    // Started as procd starts it: the package's /usr/bin/sluice (node with the package's flags, on the bundle
    // beside it).
    const lab = await DaemonLab.create({
      command: join(dir, 'root', 'usr/bin/sluice'),
      pollInterval: 0.3,
      portalSocket: true,
      extraConfig: `
config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '10000'
\toption asset '0x036CbD53842c5426634e7929541eC2318f3dCF7e'

config x402 'x402'
\toption enabled '1'
\toption facilitator_url 'http://127.0.0.1:8'
\toption network 'eip155:84532'
\toption pay_to '0x000000000000000000000000000000000000dEaD'
\toption token_name 'USDC'

config http 'http'
\toption listen '127.0.0.1:${port}'
`,
    });
    try {
      lab.portal.addClient('02:00:00:00:0b:01', '10.0.0.21');
      await lab.startDaemon();
      for (const [path, file] of [
        ['/portal', 'index.html'],
        ['/portal.js', 'portal.js'],
      ] as const) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        assert.is(res.status, 200, path);
        assert.is(
          await res.text(),
          readFileSync(join(dir, 'root', 'usr/share/sluice/portal', file), 'utf8'),
          `${path} is the packaged file`,
        );
      }
      await lab.call('grant', { mac: '02:00:00:00:0b:01', bytes: 1048576 });
      // Bytes count from the first meter tick dispatched after the session started (src/meter/meter.ts, billing rules):
      // the gate open and that tick committed (the one in flight at the grant may predate it), then the traffic.
      await lab.waitFor(() => lab.clientState('02:00:00:00:0b:01') === 'Authenticated', 30_000, 'gate open');
      const ticks = async () => ((await lab.call('stats')).meter as { ticks_ok: number }).ticks_ok;
      const from = await ticks();
      await lab.waitFor(async () => (await ticks()) >= from + 2, 60_000, 'a meter tick after the start');
      lab.portal.addTraffic('02:00:00:00:0b:01', 200 * 1024, 0);
      await lab.waitFor(
        async () => (await lab.session('02:00:00:00:0b:01')).used === String(200 * 1024),
        90_000,
        'metered usage (a liveness bound)',
      );
      assert.ok(
        Number(((await lab.call('stats')).meter as Record<string, unknown>).ticks) > 0,
        'the meter ticks with the shipped worker',
      );
    } catch (err) {
      // What the daemon said, for a failure on a machine one cannot log into (CI).
      console.error(`the daemon's output, last 4000 characters:\n${lab.output.slice(-4000)}`);
      throw err;
    } finally {
      await lab.close();
    }
  },
);

test.run();
