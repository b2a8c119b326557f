// `make ipk`: builds sluice_<v>_all.ipk and luci-app-sluice_<v>_all.ipk for OpenWrt 24.10's opkg without an SDK.
// The layout is what OpenWrt's ipkg-build produces: a gzipped tar of ./debian-binary ("2.0"), ./data.tar.gz and
// ./control.tar.gz, every member owned by 0:0, names sorted, one fixed mtime, gzip without name or time (zlib's
// header), so a rebuild of the same tree is byte-identical. Versions, dependencies, titles and conffiles are read from
// the two package Makefiles, so the SDK build and this one cannot drift; test/package/ipk.test.ts unpacks the result.
// Usage: node scripts/package.mjs [outdir]   (needs `npm run build` first; GNU tar)
//        node scripts/package.mjs --apk [outdir]   OpenWrt 25.12 .apk (APKv3) with `apk mkpkg` from apk-tools 3
//        ($APK or `apk` in PATH), the way OpenWrt's include/package-pack.mk calls it: unsigned (OpenWrt signs the
//        feed index, not packages; install a local file with --allow-untrusted).
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { poToLmo } from './lmo.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const apkMode = process.argv.includes('--apk');
const out = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? join(ROOT, 'dist', apkMode ? 'apk' : 'ipk');
// Reproducible: the last commit's time when in git, else a fixed epoch.
const epoch = (() => {
  try {
    return execFileSync('git', ['-C', ROOT, 'log', '-1', '--format=%ct'], { encoding: 'utf8' }).trim() || '1700000000';
  } catch {
    return '1700000000';
  }
})();

/** `NAME:=value` from a Makefile (first match), or `define NAME … endef` bodies. */
function mkVar(text, name) {
  const m = new RegExp(`^\\s*${name.replace(/[/$()]/g, '\\$&')}:=(.*)$`, 'm').exec(text);
  return m ? m[1].trim() : undefined;
}
function mkDefine(text, name) {
  const m = new RegExp(`^define ${name.replace(/[/$()]/g, '\\$&')}\\n([\\s\\S]*?)^endef`, 'm').exec(text);
  return m ? m[1] : undefined;
}
/** OpenWrt DEPENDS (`+node +luci-base`) → control Depends (libc first, as the buildroot adds it). */
const depends = (spec) =>
  [
    'libc',
    ...spec
      .split(/\s+/)
      .filter(Boolean)
      .map((d) => d.replace(/^\+/, '')),
  ].join(', ');

const mainMk = readFileSync(join(ROOT, 'Makefile'), 'utf8');
const luciMk = readFileSync(join(ROOT, 'luci-app', 'Makefile'), 'utf8');
const version = `${mkVar(mainMk, 'PKG_VERSION')}-r${mkVar(mainMk, 'PKG_RELEASE')}`;

for (const f of ['sluice.mjs', 'evm.mjs', 'mqtt.mjs', 'cashu.mjs', 'usage-worker.mjs', 'worker.js']) {
  if (!existsSync(join(ROOT, 'dist', f))) {
    console.error(`package: dist/${f} is missing: run 'npm run build' first`);
    process.exit(1);
  }
}

/** install(1) with a mode, creating parents. */
function put(stage, from, to, mode) {
  const dest = join(stage, to);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(join(ROOT, from), dest);
  chmodSync(dest, mode);
}
/**
 * The pay page, every file of it, so a page part added to files/usr/share/sluice/portal cannot be left out: that
 * directory's files (the build writes its batch.js bundle there too), then any the build's dist/portal has besides.
 */
const PAGE = 'files/usr/share/sluice/portal';
const BUILT_PAGE = 'dist/portal';
function putPage(stage) {
  const filesOf = (dir) => readdirSync(join(ROOT, dir)).filter((name) => statSync(join(ROOT, dir, name)).isFile());
  const own = filesOf(PAGE);
  for (const name of [...new Set([...own, ...filesOf(BUILT_PAGE)])].sort())
    put(stage, join(own.includes(name) ? PAGE : BUILT_PAGE, name), join('usr/share/sluice/portal', name), 0o644);
}
function copyTree(stage, from, to) {
  const walk = (rel) => {
    for (const name of readdirSync(join(ROOT, from, rel)).sort()) {
      const r = join(rel, name);
      if (statSync(join(ROOT, from, r)).isDirectory()) walk(r);
      else put(stage, join(from, r), join(to, r), 0o644);
    }
  };
  walk('');
}

const POSTINST = `#!/bin/sh
[ "\${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "\${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "\${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
`;
const PRERM = `#!/bin/sh
[ -s "\${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "\${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
`;
// As luci.mk's postinst: drop LuCI's caches and make rpcd re-read the ACLs, so the new menu shows at once.
const LUCI_POSTINST = `#!/bin/sh
[ -n "\${IPKG_INSTROOT}" ] || {
	rm -f /tmp/luci-indexcache.*
	rm -rf /tmp/luci-modulecache/
	killall -HUP rpcd 2>/dev/null
	exit 0
}
`;

/** luci.mk's language titles for the languages we translate. */
const LANGUAGES = { de: 'Deutsch (German)' };

const packages = [
  {
    name: 'sluice',
    fields: {
      Depends: depends(mkVar(mainMk, 'DEPENDS')),
      Source: 'sluice',
      SourceName: 'sluice',
      License: mkVar(mainMk, 'PKG_LICENSE'),
      Section: mkVar(mainMk, 'SECTION'),
      'Require-User': mkVar(mainMk, 'USERID'),
    },
    title: mkVar(mainMk, 'TITLE'),
    description: mkDefine(mainMk, 'Package/sluice/description'),
    conffiles: mkDefine(mainMk, 'Package/sluice/conffiles'),
    scripts: { postinst: POSTINST, prerm: PRERM },
    stage(s) {
      put(s, 'dist/sluice.mjs', 'usr/share/sluice/sluice.mjs', 0o755);
      // sluice's own code split where it is loaded later (scripts/build.mjs): every file, named by its content's hash.
      for (const f of readdirSync(join(ROOT, 'dist')).filter((name) => name.startsWith('sluice-')))
        put(s, `dist/${f}`, `usr/share/sluice/${f}`, 0o644);
      // viem, loaded on the first EVM signature (scripts/build.mjs): without it every x402 purchase is ERR_MODULE_LOAD.
      put(s, 'dist/evm.mjs', 'usr/share/sluice/evm.mjs', 0o644);
      // mqtt.js, loaded by the MQTT sink's first connection: without it mqtt.enabled is ERR_MODULE_LOAD at start.
      put(s, 'dist/mqtt.mjs', 'usr/share/sluice/mqtt.mjs', 0o644);
      // cashu-ts and secp256k1, loaded when the tollgate section opens its door or its cashu method
      // (src/cashu/loader.ts).
      put(s, 'dist/cashu.mjs', 'usr/share/sluice/cashu.mjs', 0o644);
      put(s, 'dist/usage-worker.mjs', 'usr/share/sluice/usage-worker.mjs', 0o644);
      put(s, 'dist/worker.js', 'usr/share/sluice/worker.js', 0o644);
      // The command: node on the bundle with the package's flags (the script says why).
      put(s, 'files/usr/bin/sluice', 'usr/bin/sluice', 0o755);
      put(s, 'files/etc/init.d/sluice', 'etc/init.d/sluice', 0o755);
      put(s, 'files/etc/config/sluice', 'etc/config/sluice', 0o600);
      put(s, 'files/etc/config/sluice_secrets', 'etc/config/sluice_secrets', 0o600);
      put(s, 'files/etc/uci-defaults/90-sluice-secrets', 'etc/uci-defaults/90-sluice-secrets', 0o755);
      put(s, 'files/etc/uci-defaults/91-sluice-reload-config', 'etc/uci-defaults/91-sluice-reload-config', 0o755);
      put(s, 'files/usr/share/acl.d/sluice.json', 'usr/share/acl.d/sluice.json', 0o644);
      putPage(s);
      put(s, 'files/usr/lib/opennds/theme_sluice.sh', 'usr/lib/opennds/theme_sluice.sh', 0o755);
      put(s, 'files/usr/lib/opennds/binauth_sluice.sh', 'usr/lib/opennds/binauth_sluice.sh', 0o755);
      put(s, 'files/lib/upgrade/keep.d/sluice', 'lib/upgrade/keep.d/sluice', 0o644);
    },
  },
  {
    name: 'luci-app-sluice',
    fields: {
      Depends: depends(mkVar(luciMk, 'LUCI_DEPENDS')),
      Source: 'luci-app-sluice',
      SourceName: 'luci-app-sluice',
      License: mkVar(luciMk, 'PKG_LICENSE'),
      Section: 'luci',
    },
    title: mkVar(luciMk, 'LUCI_TITLE'),
    description: mkVar(luciMk, 'LUCI_TITLE'),
    conffiles: undefined,
    scripts: { postinst: LUCI_POSTINST },
    stage(s) {
      copyTree(s, 'luci-app/htdocs', 'www');
      copyTree(s, 'luci-app/root', '');
    },
  },
  // One translation package per luci-app/po/<lang>, as luci.mk makes luci-i18n-<app>-<lang>.
  ...readdirSync(join(ROOT, 'luci-app', 'po'))
    .filter((lang) => lang !== 'templates')
    .sort()
    .map((lang) => ({
      name: `luci-i18n-sluice-${lang}`,
      fields: {
        Depends: depends('+luci-app-sluice'),
        Source: 'luci-app-sluice',
        SourceName: 'luci-app-sluice',
        License: mkVar(luciMk, 'PKG_LICENSE'),
        Section: 'luci',
      },
      title: `${LANGUAGES[lang] ?? lang} translation for luci-app-sluice`,
      description: undefined,
      conffiles: undefined,
      scripts: { postinst: LUCI_POSTINST },
      stage(s) {
        const dest = join(s, 'usr/lib/lua/luci/i18n', `sluice.${lang}.lmo`);
        mkdirSync(dirname(dest), { recursive: true });
        writeFileSync(dest, poToLmo(readFileSync(join(ROOT, 'luci-app', 'po', lang, 'sluice.po'), 'utf8')));
        chmodSync(dest, 0o644);
      },
    })),
];

mkdirSync(out, { recursive: true });
const tar = (cwd, members) =>
  execFileSync(
    'tar',
    [
      '--format=gnu',
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--sort=name',
      `--mtime=@${epoch}`,
      '-cf',
      '-',
      ...members,
    ],
    { cwd, maxBuffer: 256 << 20 },
  );
const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const listFiles = (dir, rel = '') =>
  readdirSync(join(dir, rel), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(dir, join(rel, e.name)) : [`/${join(rel, e.name)}`]))
    .sort();

/**
 * The .apk as package-pack.mk makes it: lib/apk/packages/<pkg>.{list,conffiles,conffiles_static,rusers} and scripts.
 */
function buildApk(pkg, data, work) {
  const meta = join(data, 'lib/apk/packages');
  mkdirSync(meta, { recursive: true });
  if (pkg.fields['Require-User']) writeFileSync(join(meta, `${pkg.name}.rusers`), `${pkg.fields['Require-User']}\n`);
  writeFileSync(join(meta, `${pkg.name}.list`), listFiles(data).join('\n') + '\n');
  if (pkg.conffiles) {
    const files = pkg.conffiles
      .trim()
      .split('\n')
      .map((l) => l.trim());
    writeFileSync(join(meta, `${pkg.name}.conffiles`), files.join('\n') + '\n');
    writeFileSync(
      join(meta, `${pkg.name}.conffiles_static`),
      files.map((f) => `${f} ${sha256(join(data, f))}`).join('\n') + '\n',
    );
  }
  for (const f of readdirSync(meta)) chmodSync(join(meta, f), 0o644);
  const scripts = join(work, 'scripts');
  mkdirSync(scripts);
  const common =
    `[ -s "\${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0\n. "\${IPKG_INSTROOT}/lib/functions.sh"\nexport ` +
    `root="\${IPKG_INSTROOT}"\nexport pkgname="${pkg.name}"\n`;
  const postInstall =
    pkg.name === 'luci-app-sluice'
      ? LUCI_POSTINST.replace('#!/bin/sh\n', '')
      : `[ "\${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n${common}add_group_and_user\ndefault_postinst\n`;
  const files = {
    'post-install': `#!/bin/sh\n${postInstall}`,
    'post-upgrade': `#!/bin/sh\nexport PKG_UPGRADE=1\n${postInstall}`,
    'pre-deinstall': `#!/bin/sh\n${common}default_prerm\n`,
  };
  const args = [
    'mkpkg',
    '--info',
    `name:${pkg.name}`,
    '--info',
    `version:${version}`,
    '--info',
    `description:${(pkg.description ?? pkg.title).trim().replace(/\s+/g, ' ')}`,
    '--info',
    'arch:noarch',
    '--info',
    `license:${pkg.fields.License}`,
    '--info',
    `origin:${pkg.name}`,
    '--info',
    `depends:${pkg.fields.Depends.split(', ').join(' ')}`,
  ];
  for (const [type, text] of Object.entries(files)) {
    writeFileSync(join(scripts, type), text);
    chmodSync(join(scripts, type), 0o755);
    args.push('--script', `${type}:${join(scripts, type)}`);
  }
  const file = join(out, `${pkg.name}-${version}.apk`);
  args.push('--files', data, '--output', file);
  const apk = process.env.APK || 'apk';
  // Owners come from the file system: as root they are 0:0 already; otherwise under fakeroot, as the SDK does.
  const asRoot = process.getuid?.() === 0;
  execFileSync(asRoot ? apk : 'fakeroot', asRoot ? args : [apk, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  console.log(`${file} ${(statSync(file).size / 1024).toFixed(1)} KiB`);
}

for (const pkg of packages) {
  const work = mkdtempSync(join(tmpdir(), `ipk-${pkg.name}-`));
  try {
    const data = join(work, 'data');
    const control = join(work, 'control');
    mkdirSync(data);
    mkdirSync(control);
    pkg.stage(data);
    if (apkMode) {
      buildApk(pkg, data, work);
      continue;
    }
    const dataTgz = gzipSync(tar(data, ['.']), { level: 9 });
    const installedSize = gunzipSync(dataTgz).length;
    const description = (pkg.description ?? pkg.title)
      .trim()
      .split('\n')
      .map((l, i) => (i === 0 ? l : ` ${l.trim() || '.'}`))
      .join('\n');
    const fields = {
      Package: pkg.name,
      Version: version,
      ...pkg.fields,
      SourceDateEpoch: epoch,
      Architecture: 'all',
      'Installed-Size': String(installedSize),
      Description: `${pkg.title}\n ${description.replace(/\n/g, '\n')}`,
    };
    writeFileSync(
      join(control, 'control'),
      Object.entries(fields)
        .filter(([, v]) => v)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n') + '\n',
    );
    if (pkg.conffiles)
      writeFileSync(
        join(control, 'conffiles'),
        pkg.conffiles
          .trim()
          .split('\n')
          .map((l) => l.trim())
          .sort()
          .join('\n') + '\n',
      );
    for (const [name, text] of Object.entries(pkg.scripts)) {
      writeFileSync(join(control, name), text);
      chmodSync(join(control, name), 0o755);
    }
    const pkgDir = join(work, 'pkg');
    mkdirSync(pkgDir);
    writeFileSync(join(pkgDir, 'debian-binary'), '2.0\n');
    writeFileSync(join(pkgDir, 'data.tar.gz'), dataTgz);
    writeFileSync(join(pkgDir, 'control.tar.gz'), gzipSync(tar(control, ['.']), { level: 9 }));
    for (const f of ['debian-binary', 'data.tar.gz', 'control.tar.gz']) chmodSync(join(pkgDir, f), 0o644);
    const file = join(out, `${pkg.name}_${version}_all.ipk`);
    writeFileSync(file, gzipSync(tar(pkgDir, ['./debian-binary', './data.tar.gz', './control.tar.gz']), { level: 9 }));
    console.log(
      `${file} ${(statSync(file).size / 1024).toFixed(1)} KiB (installed ${(installedSize / 1024).toFixed(0)} KiB)`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
