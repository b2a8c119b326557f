// Bundles the daemon/CLI and the usage worker into dist/ with esbuild: no node_modules on the router.
import { build } from 'esbuild';
import { buildBatchClient } from './build-batch.mjs';
import { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';

mkdirSync('dist', { recursive: true });

/**
 * Code the router never runs, kept out of the bundle (docs/performance.md, "Bundle": the figures):
 * - readable-stream is a copy of Node's own stream module for browsers; mqtt.js, mqtt-packet and bl take Node's.
 * - worker-timers: mqtt.js's keepalive timer for browser tabs; in Node it uses the plain timers anyway.
 * - mqtt.js's SOCKS proxy (socks, ip-address, smart-buffer): reached only through MQTTJS_SOCKS_PROXY in the
 *   environment, which sluice does not offer; a daemon started with it set fails to connect, naming it.
 * - debug (and ms), mqtt.js's and mqtt-packet's trace output, shown only with DEBUG=mqttjs* in the environment:
 *   sluice logs the MQTT sink's own events; the stub is silent.
 * - lru-cache: mqtt.js's topic-alias table (a broker's topicAliasMaximum; sluice never asks for aliases, but the
 *   table is made whenever a broker offers them): a Map-based LRU with the few methods that table calls.
 * - msgpackr-extract: msgpackr's optional native decoder, which it tries to require as it loads (at start: the MQTT
 *   sink's module imports msgpackr). The package never ships it, so on a router that require always failed; from a
 *   checkout it found the repository's node_modules and loaded a native addon the router never has, and
 *   `bench -- rss` measured it (docs/performance.md, "Idle memory"). A stub that refuses: msgpackr's pure JS, as on
 *   the router, wherever dist/ runs.
 */
const SOCKS_STUB =
  `module.exports = { default() { throw new Error('MQTTJS_SOCKS_PROXY: SOCKS proxies are not in the sluice ` +
  `build'); } };`;
const WORKER_TIMERS_STUB =
  'module.exports = { setInterval: (f, ms) => setInterval(f, ' + 'ms), clearInterval: (id) => clearInterval(id) };';
const DEBUG_STUB = `function createDebug() {
  const d = function () {}; d.enabled = false; d.namespace = ''; d.log = d; d.extend = () => d; return d;
}
createDebug.enable = () => {}; createDebug.disable = () => ''; createDebug.enabled = () => false;
module.exports = createDebug; module.exports.default = createDebug;`;
const LRU_STUB = `class LRUCache {
  constructor(o) { this.max = o.max; this.map = new Map(); }
  get size() { return this.map.size; }
  get(k) {
    if (!this.map.has(k)) return undefined;
    const v = this.map.get(k); this.map.delete(k); this.map.set(k, v); return v;
  }
  set(k, v) {
    this.map.delete(k); this.map.set(k, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value);
    return this;
  }
  has(k) { return this.map.has(k); }
  delete(k) { return this.map.delete(k); }
  clear() { this.map.clear(); }
  *keys() { const all = [...this.map.keys()]; for (let i = all.length - 1; i >= 0; i--) yield all[i]; }
}
module.exports = { LRUCache };`;
const MSGPACKR_EXTRACT_STUB = `throw new Error('msgpackr-extract is not in the sluice build');`;
const STUBS = {
  'mqtt-socks': SOCKS_STUB,
  'worker-timers': WORKER_TIMERS_STUB,
  debug: DEBUG_STUB,
  'lru-cache': LRU_STUB,
  'msgpackr-extract': MSGPACKR_EXTRACT_STUB,
};
const fromMqtt = (dir) => /node_modules[\\/]mqtt(-packet)?([\\/]|$)/.test(dir);
const routerOnly = {
  name: 'router-only',
  setup(b) {
    b.onResolve({ filter: /^readable-stream$/ }, () => ({ path: 'node:stream', external: true }));
    b.onResolve({ filter: /^worker-timers$/ }, () => ({ path: 'worker-timers', namespace: 'stub' }));
    b.onResolve({ filter: /^\.\/socks$/ }, (a) =>
      /mqtt[\\/]build[\\/]lib[\\/]connect$/.test(a.resolveDir) ? { path: 'mqtt-socks', namespace: 'stub' } : undefined,
    );
    b.onResolve({ filter: /^debug$/ }, (a) =>
      fromMqtt(a.resolveDir) ? { path: 'debug', namespace: 'stub' } : undefined,
    );
    b.onResolve({ filter: /^lru-cache$/ }, (a) =>
      fromMqtt(a.resolveDir) ? { path: 'lru-cache', namespace: 'stub' } : undefined,
    );
    b.onResolve({ filter: /^msgpackr-extract$/ }, () => ({ path: 'msgpackr-extract', namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, (a) => ({ contents: STUBS[a.path], loader: 'js' }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  legalComments: 'none',
  minifySyntax: true,
  minifyWhitespace: true,
  // Local names shortened (flash: ~25% of the bundle), function and class names kept: logs, errors and stack traces
  // still name what ran.
  minifyIdentifiers: true,
  keepNames: true,
  sourcemap: false,
  // ESM bundles of CommonJS deps (piscina, mqtt…) need require/__filename/__dirname; give them the real ones.
  banner: {
    js: [
      "import { createRequire as __sluiceCreateRequire } from 'node:module';",
      "import { fileURLToPath as __sluiceFileURLToPath } from 'node:url';",
      "import { dirname as __sluiceDirname } from 'node:path';",
      'const require = __sluiceCreateRequire(import.meta.url);',
      'const __filename = __sluiceFileURLToPath(import.meta.url);',
      'const __dirname = __sluiceDirname(__filename);',
    ].join(' '),
  },
  plugins: [routerOnly],
  logLevel: 'warning',
};

/**
 * viem (with noble's curves and hashes) is a file of its own, dist/evm.mjs, that the daemon imports when it first
 * hashes or recovers an EVM signature (src/x402/evm-loader.ts): an idle router never loads it (docs/performance.md,
 * "Idle memory"). src/x402/evm.ts holds no sluice code (only viem's re-exports), so the two files share nothing: no
 * class exists twice.
 */
const EVM_FILE = 'evm.mjs';
const evmApart = {
  name: 'evm-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/evm\.ts$/ }, (a) =>
      /[\\/]src[\\/]x402$/.test(a.resolveDir) ? { path: `./${EVM_FILE}`, external: true } : undefined,
    );
  },
};
// mqtt.js (with ws, mqtt-packet, bl…) likewise: dist/mqtt.mjs, imported by the MQTT sink's first connection
// (src/upstream/mqtt/sink.ts): a router with mqtt off never reads it.
const MQTT_FILE = 'mqtt.mjs';
const mqttApart = {
  name: 'mqtt-apart',
  setup(b) {
    b.onResolve({ filter: /^mqtt$/ }, (a) =>
      a.kind === 'dynamic-import' && /[\\/]src[\\/]upstream[\\/]mqtt$/.test(a.resolveDir)
        ? { path: `./${MQTT_FILE}`, external: true }
        : undefined,
    );
  },
};
// cashu-ts and noble's secp256k1 (src/cashu/lib.ts) likewise: dist/cashu.mjs, imported when the tollgate section opens
// its door (the router's Nostr key) or its cashu method (src/cashu/loader.ts): a router without the section never reads
// it.
const CASHU_FILE = 'cashu.mjs';
const cashuApart = {
  name: 'cashu-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/lib\.ts$/ }, (a) =>
      /[\\/]src[\\/]cashu$/.test(a.resolveDir) ? { path: `./${CASHU_FILE}`, external: true } : undefined,
    );
  },
};
/**
 * sluice's own code is split (esbuild's `splitting`) at its dynamic imports: the daemon's start (main.ts) loads what
 * it runs, and a payment method's code (payments/<method>/index.ts: lazyPart) is read when the config switches the
 * method on. esbuild puts a module shared by several such imports in a chunk they all import, so no module (and no
 * class) exists twice. The chunks sit next to sluice.mjs (`sluice-*.mjs`), where the files every part finds beside
 * its own code are (evm.mjs, usage-worker.mjs, Piscina's worker.js, the pay page). They are removed first: a chunk's
 * name carries its content's hash, and the package installs every one. RADIUS's code is read the same way when
 * radius.enabled (upstream/radius-open.ts), the MQTT sink's and the hook's with their outbox when their section is on
 * (upstream/section-sink.ts), msgpackr's when the MQTT sink opens its queue, sluice's own gate under main.portal
 * 'sluice' (gate/portal.ts). The idle daemon of `bench -- rss` (x402 + LAN endpoint, openNDS) loads 35 of the 69
 * files, 556 KiB of 977 (2026-11-30; 613 KiB before the sinks' cut). Before msgpackr's cut, the split
 * was 0.2–0.5 MB less resident than the same code in one file (four runs each, interleaved: docs/performance.md,
 * "Idle memory"). The 2026-11-24 measurement that kept one file split nothing off but main.ts's own dynamic imports.
 */
for (const f of readdirSync('dist')) if (/^sluice-.*\.mjs$/.test(f)) rmSync(`dist/${f}`);
const main = await build({
  ...common,
  plugins: [...common.plugins, evmApart, mqttApart, cashuApart],
  entryPoints: { sluice: 'src/main.ts' },
  outdir: 'dist',
  splitting: true,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'sluice-[name]-[hash]',
  metafile: true,
  banner: { js: '#!/usr/bin/env node\n' + common.banner.js },
});
const evm = await build({ ...common, entryPoints: ['src/x402/evm.ts'], outfile: `dist/${EVM_FILE}`, metafile: true });
const cashu = await build({
  ...common,
  entryPoints: ['src/cashu/lib.ts'],
  outfile: `dist/${CASHU_FILE}`,
  metafile: true,
});
const mqtt = await build({
  ...common,
  stdin: { contents: "export { default } from 'mqtt';", resolveDir: 'src/upstream/mqtt', loader: 'js' },
  outfile: `dist/${MQTT_FILE}`,
  metafile: true,
});
/**
 * `sluice-fleet` (src/fleet/main.ts): the collector and dashboard for a server or a laptop, never a router's. A bundle
 * of its own in dist/fleet/, where the package's glob of `sluice-*` files never looks, and a command of its own, so
 * the router's sluice.mjs does not even carry its name; its npm packages (pg, PGlite with its WASM, mqtt.js, msgpackr)
 * stay in node_modules, which a server has.
 */
mkdirSync('dist/fleet', { recursive: true });
await build({
  ...common,
  plugins: [],
  packages: 'external',
  entryPoints: ['src/fleet/main.ts'],
  outfile: 'dist/fleet/fleet.mjs',
  banner: { js: '#!/usr/bin/env node\n' + common.banner.js },
});
chmodSync('dist/fleet/fleet.mjs', 0o755);
// What went into which file, for the bundle tests (viem is not in sluice's code); not shipped. `dist/sluice.mjs`:
// every input of the main build, sluice.mjs and its chunks together.
const inputsOf = (result) =>
  Object.fromEntries(Object.entries(result.metafile.outputs).map(([out, o]) => [out, Object.keys(o.inputs)]));
const mainInputs = [...new Set(Object.values(main.metafile.outputs).flatMap((o) => Object.keys(o.inputs)))];
writeFileSync(
  'dist/meta.json',
  JSON.stringify(
    { ...inputsOf(main), 'dist/sluice.mjs': mainInputs, ...inputsOf(evm), ...inputsOf(mqtt), ...inputsOf(cashu) },
    null,
    1,
  ) + '\n',
);
// What each package and each src/ folder adds to the bundle (`node scripts/build.mjs --sizes`; docs/performance.md).
if (process.argv.includes('--sizes')) {
  for (const [out, result] of [
    ['dist/sluice.mjs', main],
    [`dist/${EVM_FILE}`, evm],
    [`dist/${MQTT_FILE}`, mqtt],
    [`dist/${CASHU_FILE}`, cashu],
  ]) {
    console.log(out);
    const bytes = new Map();
    const inputs = Object.values(result.metafile.outputs).flatMap((o) => Object.entries(o.inputs));
    for (const [path, { bytesInOutput }] of inputs) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
      const key = pkg ?? (path.startsWith('src/') ? path.split('/').slice(0, 2).join('/') : path);
      bytes.set(key, (bytes.get(key) ?? 0) + bytesInOutput);
    }
    for (const [key, n] of [...bytes].sort((a, b) => b[1] - a[1]))
      console.log(`  ${key.padEnd(28)} ${(n / 1024).toFixed(1).padStart(7)} KiB`);
  }
}
await build({ ...common, entryPoints: ['workers/usage.ts'], outfile: 'dist/usage-worker.mjs' });
// Piscina starts every thread on its own bootstrap script, `worker.js` next to the code that loaded it (here: the
// bundle), which then imports our usage worker. Ship it bundled as CommonJS; dist/package.json keeps `.js` CommonJS
// inside the repo (whose package.json says "module"), as it is by default on the router.
await build({
  ...common,
  banner: {},
  format: 'cjs',
  entryPoints: ['node_modules/piscina/dist/worker.js'],
  outfile: 'dist/worker.js',
  external: ['@napi-rs/nice'],
});
writeFileSync('dist/package.json', '{ "type": "commonjs" }\n');
chmodSync('dist/sluice.mjs', 0o755);
await buildBatchClient();
// The customer's pay page, next to the bundle as on the router (/usr/share/sluice/portal): the LAN endpoint serves it.
rmSync('dist/portal', { recursive: true, force: true });
cpSync('files/usr/share/sluice/portal', 'dist/portal', { recursive: true });
for (const file of [
  'dist/sluice.mjs',
  `dist/${EVM_FILE}`,
  `dist/${MQTT_FILE}`,
  `dist/${CASHU_FILE}`,
  'dist/usage-worker.mjs',
  'dist/worker.js',
  'dist/portal/batch.js',
]) {
  console.log(`${file.padEnd(24)} ${(statSync(file).size / 1024).toFixed(1).padStart(8)} KiB`);
}
const chunks = readdirSync('dist').filter((f) => f.startsWith('sluice-'));
const chunkBytes = chunks.reduce((n, f) => n + statSync(`dist/${f}`).size, 0);
console.log(
  `${'dist/sluice-*.mjs'.padEnd(24)} ${(chunkBytes / 1024).toFixed(1).padStart(8)} KiB in ${chunks.length} files`,
);
