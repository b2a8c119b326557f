// The fast tier's files, compiled ahead for test/run.mjs: one esbuild build bundles them all (code splitting: the
// modules two files share are one chunk), and each file then runs as plain JavaScript in a worker thread of the
// thread hosts (test/helpers/thread-host.mjs) or a node process of its own, with no TypeScript loader in it. Under tsx
// a file paid ~0.5 s of CPU for the loader and ~0.5–1.5 s more to transpile, resolve and link its ~270 modules of src/
// one by one through the loader's thread; bundled, a file starts in ~0.1 s.
//
// What a bundle must keep of running from the sources:
// - import.meta.url, .dirname and .filename are each module's own source path (fixtures, child scripts and package.json
//   are found from them), written into the module as it is bundled;
// - a dynamic import() of a literal path becomes a chunk of its own, loaded when it is reached: what src/ loads lazily
//   (viem, cashu-ts) stays lazy;
// - packages are imported from node_modules as they are (one instance each, their own import.meta), except uvu, which
//   is bundled with test/helpers/uvu-mend.mjs applied to its runner (the mend tsx's files get from a loader hook);
// - class and function names stay (esbuild's keepNames), and stack traces point into the sources (linked source maps,
//   read when a trace needs them: lazy-source-maps.mjs).
//
// The output is cached under node_modules/.cache/sluice-test/, one folder per set of entry files, reused while every
// input (each module's bytes, as esbuild read them) hashes the same: a run after an edit rebuilds (~2 s of CPU for the
// whole tier, esbuild's own threads), a run after none only hashes the inputs (~0.1 s). A build goes to a folder of
// its own and is renamed into place, so a run that still reads an older build is not cut off.
//
// Slots: a build folder `<out>` has links beside it, `<out>-1` … `<out>-SLOTS`, each to `<out>`, and in it a folder
// `<out>/node_modules` of links to the repository's packages. A worker thread that runs several files one after another
// (test/helpers/thread-file.mjs) imports its k-th file through slot k - 1: its chunks are linked anew
// (bundle-linker.mjs), and the packages they import are imported from the slot's path (`load-package.mjs` at the
// build's root); the hosts run with --preserve-symlinks, so each is a module instance of its own (a bare import
// resolves through the slot's node_modules links). The SHARED packages have no link there but
// one beside the build (`<cacheDir>/node_modules`), where a bare import from any slot finds them next: one path, so one
// instance for every file of a thread, and so is what they import (their own dependencies are SHARED too). The links
// are made as a build is used (and made again for a package installed since), and removed with it.
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_LOADER } from './bundle-linker.mjs';
import { UVU_RUNNER, mendUvu } from './uvu-mend.mjs';

/** Changes with this file's way of building: a new version never reads an older build. */
const FORMAT = 7;
/**
 * Packages a thread's files share, one instance for all of them, where every other package is each file's own (above).
 * Each keeps nothing a file could set or see from another (docs/testing.md "The edit loop"): functions of their input
 * and constants (noble's secp256k1 and hashes, scure's encodings and BIP-32/39), frozen exports (noble 2), randomness
 * read from `globalThis.crypto` at each call, and, as module state, only tables a result does not depend on (noble's
 * multiples of a point, built on its first multiplication: 40–60 ms of CPU for secp256k1's generator, which a thread's
 * later files then skip, as they skip the packages' load). What one imports is in this list too (bundle-imports.test).
 */
export const SHARED = [
  '@noble/ciphers',
  '@noble/curves',
  '@noble/hashes',
  '@scure/base',
  '@scure/bip32',
  '@scure/bip39',
];
/**
 * Large CommonJS packages the tests take whole (`import ts from 'typescript'`): a bundle requires them instead of
 * importing them, since Node's import of a CommonJS module first scans all of it for the names it exports
 * (cjs-module-lexer: ~0.7 s of CPU for typescript's 9 MB, in each of the two architecture tests).
 */
const REQUIRED = ['typescript'];
/** Slots of a build (above): a thread runs at most 1 + SLOTS files. */
export const SLOTS = 15;
/** An older build of the same entry files is removed once it is this old (a run may still be reading it). */
const STALE_MS = 60 * 60 * 1000;
/** The builds of another set of entry files (one file's, the watch mode's) are removed once unused for this long. */
const UNUSED_MS = 24 * 60 * 60 * 1000;

const sha1 = (data) => createHash('sha1').update(data).digest('hex');

/** `import.meta.url`/`.dirname`/`.filename` in a module's source, replaced by its own path's values. */
function withOwnMeta(source, path) {
  const values = { url: pathToFileURL(path).href, dirname: dirname(path), filename: path };
  return source.replace(/\bimport\.meta\.(url|dirname|filename)\b/g, (_, key) => JSON.stringify(values[key]));
}

/** The cached build's manifest when every input it lists still hashes the same, else null. */
function freshManifest(cacheDir, repo) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(cacheDir, 'manifest.json'), 'utf8'));
    statSync(join(cacheDir, manifest.out));
  } catch {
    return null;
  }
  for (const [path, hash] of Object.entries(manifest.inputs)) {
    try {
      if (sha1(readFileSync(join(repo, path))) !== hash) return null;
    } catch {
      return null;
    }
  }
  return manifest;
}

/** A link at `path` to `target`, unless there is one (made by another run, or before). */
function link(target, path) {
  try {
    symlinkSync(target, path);
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  }
}

/**
 * Links in `dir` to the packages of `modules` (a node_modules folder; a scope's packages in a folder of the scope's
 * name), those named by `which` (a package's name: `pkg` or `@scope/pkg`).
 */
function linkPackages(modules, dir, which) {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(modules)) {
    if (name.startsWith('.')) continue; // .bin, .cache (the builds themselves), npm's lock
    if (!name.startsWith('@')) {
      if (which(name)) link(join(modules, name), join(dir, name));
      continue;
    }
    const scoped = readdirSync(join(modules, name)).filter((p) => which(`${name}/${p}`));
    if (scoped.length > 0) mkdirSync(join(dir, name), { recursive: true });
    for (const p of scoped) link(join(modules, name, p), join(dir, name, p));
  }
}

/** The build's slots and its packages' links (above). */
function makeSlots(cacheDir, out, repo) {
  const modules = join(repo, 'node_modules');
  linkPackages(modules, join(cacheDir, out, 'node_modules'), (name) => !SHARED.includes(name));
  linkPackages(modules, join(cacheDir, 'node_modules'), (name) => SHARED.includes(name));
  for (let k = 1; k <= SLOTS; k++) link(out, join(cacheDir, `${out}-${k}`));
}

/**
 * Bundles `files` (absolute paths of test files under `repo`) or reuses the cached bundle of them.
 * @returns {Promise<{ outputs: Map<string, string>, imports: Map<string, string[]>, built: boolean,
 *   slots: (bundle: string) => string[] }>} each file's bundle, each input's imports (paths relative to `repo`) for the
 *   watch mode, and a bundle's path in each of the build's slots
 */
export async function bundleTests(files, repo) {
  const entries = files.map((f) => relative(repo, f)).sort();
  // esbuild's version from its package.json: importing esbuild itself is left to a build.
  const esbuildPackage = JSON.parse(readFileSync(join(repo, 'node_modules', 'esbuild', 'package.json'), 'utf8'));
  const profile = Boolean(process.env.SLUICE_TEST_PROFILE);
  // The mend is part of how a build is made: a change to it builds anew.
  const mend = sha1(readFileSync(new URL('./uvu-mend.mjs', import.meta.url)));
  const key = sha1(JSON.stringify({ FORMAT, esbuild: esbuildPackage.version, profile, mend, repo, entries })).slice(
    0,
    16,
  );
  // By its real path: a bundle runs from there (node resolves the main module's links), and its source maps name the
  // sources relative to it.
  const cacheDir = join(realpathSync(join(repo, 'node_modules')), '.cache', 'sluice-test', key);
  let manifest = freshManifest(cacheDir, repo);
  const built = manifest === null;
  if (!built)
    utimesSync(cacheDir, new Date(), new Date()); // in use: not removed as unused
  else manifest = await build(await import('esbuild'), entries, repo, cacheDir, key);
  const outDir = join(cacheDir, manifest.out);
  makeSlots(cacheDir, manifest.out, repo);
  const slotDirs = Array.from({ length: SLOTS }, (_, i) => `${outDir}-${i + 1}`);
  return {
    slots: (bundle) => (bundle.startsWith(`${outDir}/`) ? slotDirs.map((d) => d + bundle.slice(outDir.length)) : []),
    outputs: new Map(Object.entries(manifest.outputs).map(([entry, out]) => [resolve(repo, entry), join(outDir, out)])),
    imports: new Map(Object.entries(manifest.imports)),
    built,
  };
}

async function build(esbuild, entries, repo, cacheDir, key) {
  mkdirSync(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `tmp-${process.pid}-${Date.now()}`);
  /** The bytes each module was bundled from, hashed (what the cache is checked against). */
  const inputs = {};
  const sourceOf = (path) => {
    const source = readFileSync(path, 'utf8');
    inputs[relative(repo, path)] = sha1(source);
    return source;
  };
  const result = await esbuild.build({
    absWorkingDir: repo,
    entryPoints: entries,
    outdir: tmp,
    outbase: repo,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Node 20 reads `with { type: 'json' }`; esbuild's node20 table would drop it from an external import.
    supported: { 'import-attributes': true },
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [
      {
        name: 'sluice-tests',
        setup(b) {
          // Packages stay imports of node_modules, uvu and what it imports apart (its runner is mended as it is
          // bundled; kleur, diff and dequal, which every file loads through it, cost a thread ~10 ms of CPU as
          // packages of their own: Node's resolving of each through its package.json), and the REQUIRED ones are
          // required.
          b.onResolve({ filter: /^[^./]/ }, (args) => {
            if (REQUIRED.includes(args.path) && args.namespace !== 'required')
              return { path: args.path, namespace: 'required' };
            if (/^uvu(\/|$)/.test(args.path) || args.importer.includes('/node_modules/uvu/')) return undefined;
            return { path: args.path, external: true };
          });
          // Required from the chunk's own path, so that a thread's file in a slot requires its own instance.
          b.onLoad({ filter: /.*/, namespace: 'required' }, (args) => ({
            contents:
              "import { createRequire } from 'node:module';\n" +
              `export default createRequire(import.meta.url)(${JSON.stringify(args.path)});`,
            loader: 'js',
          }));
          b.onLoad({ filter: /\.(ts|mts|mjs|js)$/ }, (args) => {
            const source = sourceOf(args.path);
            const loader = /\.m?ts$/.test(args.path) ? 'ts' : 'js';
            if (UVU_RUNNER.test(args.path)) return { contents: mendUvu(source, args.path), loader };
            if (args.path.includes('/node_modules/')) return { contents: source, loader };
            return { contents: withOwnMeta(source, args.path), loader };
          });
        },
      },
    ],
  });
  // What esbuild read itself (JSON): hashed as it is now.
  for (const path of Object.keys(result.metafile.inputs))
    if (!path.startsWith('required:')) inputs[path] ??= sha1(readFileSync(join(repo, path)));
  const out = sha1(JSON.stringify(Object.entries(inputs).sort())).slice(0, 16);
  const outputs = {};
  for (const [path, output] of Object.entries(result.metafile.outputs)) {
    if (output.entryPoint) outputs[output.entryPoint] = relative(tmp, resolve(repo, path));
  }
  const imports = {};
  for (const [path, input] of Object.entries(result.metafile.inputs)) {
    imports[path] = input.imports.filter((i) => !i.external).map((i) => i.path);
  }
  // What a thread's linker (bundle-linker.mjs) leaves to Node's loader is imported from here, so from the slot's path
  // the file runs in: its packages are its own instances.
  writeFileSync(
    join(tmp, PACKAGE_LOADER),
    "// test/helpers/bundle-linker.mjs: what Node's loader imports for a file of this build, from its slot.\n" +
      'export const loadPackage = (spec, attributes) =>\n' +
      '  import(spec, attributes && Object.keys(attributes).length > 0 ? { with: attributes } : undefined);\n',
  );
  try {
    renameSync(tmp, join(cacheDir, out));
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // the same build is there already (another run made it)
  }
  const manifest = { out, outputs, inputs, imports };
  const written = join(cacheDir, `manifest.json.${process.pid}`);
  writeFileSync(written, JSON.stringify(manifest));
  renameSync(written, join(cacheDir, 'manifest.json'));
  removeOlder(cacheDir, STALE_MS, [
    out,
    'manifest.json',
    'node_modules',
    ...Array.from({ length: SLOTS }, (_, i) => `${out}-${i + 1}`),
  ]);
  removeOlder(dirname(cacheDir), UNUSED_MS, [key]);
  return manifest;
}

/**
 * Removes what `dir` holds that was last changed longer than `ms` ago (a link by its own time), but the names `kept`.
 */
function removeOlder(dir, ms, kept) {
  for (const name of readdirSync(dir)) {
    if (kept.includes(name)) continue;
    try {
      if (Date.now() - lstatSync(join(dir, name)).mtimeMs > ms)
        rmSync(join(dir, name), { recursive: true, force: true });
    } catch {
      /* removed meanwhile */
    }
  }
}
