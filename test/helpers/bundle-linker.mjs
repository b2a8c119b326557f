// How a fast file's bundle (test/helpers/bundle.mjs) is imported in a worker thread of test/helpers/thread-host.mjs:
// its chunks are compiled and linked here, as vm.SourceTextModules (the hosts run with --experimental-vm-modules),
// not by Node's loader. Each file still gets a new instance of every module of its bundle (a file's module state never
// reaches the next file), but what is the same for every file of a thread is kept by the thread, none of it state a
// file can see: each chunk's text (a build never changes; a new build is a new folder) and V8's code cache of it,
// taken as the thread first compiles the chunk (before it runs: the cache holds no value of a run) and given to V8
// for each later file, which then deserializes the chunk's compiled top level instead of parsing its text again.
// Node's loader resolves, stats and reads each of a file's ~90 chunks again through the file's own path, and V8
// parses each again: `api/args`'s bundle, imported twelve times in one thread, took ~100 ms of the thread's CPU each
// time through Node's loader, ~30 ms here (load ~5, 10 ms ticks).
// What is not a chunk of the build goes to Node's loader, imported from the file's own slot (bundle.mjs's
// load-package.mjs), so that a package is the file's own instance as before: a package (a bare import, through a
// module re-exporting its namespace), a built-in, and what a dynamic import names outside the build.
// A module's import.meta.url is its own path (the slot's), as under Node's loader; a stack trace names the build's.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import nodeModule, { isBuiltin } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { threadId } from 'node:worker_threads';

/** The file a build has at its root that imports what Node's loader loads, from that slot's path (bundle.mjs). */
export const PACKAGE_LOADER = 'load-package.mjs';

/** A build folder's name without a slot's suffix: the same build in every slot. */
const buildName = (root) => basename(root).replace(/-\d+$/, '');

/**
 * Each chunk a thread has compiled, by its path in the build (not a slot): { source, file, cachedData } (file: where
 * its code cache is kept, null if nowhere; cachedData: the cache, undefined until there is one).
 */
const chunks = new Map();

/**
 * V8's code caches of a build's chunks, one file per chunk, in `<build>/v8-cache` (removed with the build): a thread's
 * first compile of a chunk is then the run's first, not each thread's. Written once, atomically; one V8 rejects
 * (another Node's or other flags', or a torn file) is compiled without and written again. A cache is the build's own:
 * in Node 20, a module compiled from a code cache keeps the name of the script the cache was taken from, whatever
 * identifier it is given, and a stack trace through it names that file (its source map is read from there).
 */
export const CACHE_DIR = 'v8-cache';

/**
 * The file of V8's code cache of the chunk at `path` (in a build, not a slot: bundle.mjs's build folder) of `source`;
 * null for a chunk with an import(): V8 gives a module compiled from a code cache no host options, so an import() in it
 * would find no callback ("A dynamic import callback was not specified"), and such a chunk is compiled from its text
 * each time.
 */
export function cacheFile(path, source) {
  if (source.includes('import(')) return null;
  const root = rootOf(path);
  return join(
    root,
    CACHE_DIR,
    `${createHash('sha1')
      .update(path.slice(root.length + 1))
      .digest('hex')}.bin`,
  );
}

function readCache(file) {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

function writeCache(file, data) {
  const tmp = `${file}.${process.pid}-${threadId}`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true }); // a cache not written is compiled again next time
  }
}

/**
 * The running file's modules, held until the next file starts, as Node's loader holds its own: Node holds a module's
 * wrapper (its ModuleWrap) weakly, and a module whose evaluation waits (top-level await) must not lose it meanwhile.
 */
let held = null;
/** A build root (a slot) by a folder in it. */
const roots = new Map();

/** The build root (slot) a chunk at `path` is in: the nearest folder up with the package loader; null if none. */
function rootOf(path) {
  const dir = dirname(path);
  if (dir === path) return null;
  let root = roots.get(dir);
  if (root !== undefined) return root;
  root = existsSync(resolve(dir, PACKAGE_LOADER)) ? dir : rootOf(dir);
  roots.set(dir, root);
  return root;
}

/**
 * A module exporting `names` from the namespace its import.meta is given: a package's exports as they were when it
 * loaded (a vm.SyntheticModule would say it without a module's text, but its evaluation in Node 20 can find its
 * wrapper collected: a segfault, seen with --gc-interval). A built-in's namespace is live (module.syncBuiltinESMExports
 * writes a built-in's changed properties into it): `live` modules take it again at each sync (below).
 */
function reexport(names, live) {
  const lines = ['const namespace = import.meta.namespace;'];
  const copies = [];
  const exported = names.map((name, i) => {
    const key = JSON.stringify(name);
    lines.push(`let export${i} = namespace[${key}];`);
    copies.push(`export${i} = namespace[${key}];`);
    return `export${i} as ${key}`;
  });
  if (live) lines.push(`import.meta.synced(() => { ${copies.join(' ')} });`);
  lines.push(`export { ${exported.join(', ')} };`);
  return lines.join('\n');
}

/** V8's code cache of each re-exporting module's text (the same for a package in every file of the thread). */
const reexports = new Map();

/** A module re-exporting `namespace`, the one of the package or built-in `spec` (reexport(), above). */
function reexporting(spec, namespace) {
  const live = isBuiltin(spec);
  const source = reexport(Object.keys(namespace), live);
  const options = (cachedData) => ({
    identifier: `${spec} (through bundle-linker.mjs)`,
    cachedData,
    initializeImportMeta: (meta) => {
      meta.namespace = namespace;
      if (live) meta.synced = (sync) => syncs.push(sync);
    },
  });
  const cachedData = reexports.get(source);
  if (cachedData !== undefined) {
    try {
      return new vm.SourceTextModule(source, options(cachedData));
    } catch (err) {
      // V8's flags are the process's, and a file may change them while another thread runs (src/heap-release.ts's
      // --expose-gc): a cache taken under the others is rejected, and a SourceTextModule throws on it.
      if (err?.code !== 'ERR_VM_MODULE_CACHED_DATA_REJECTED') throw err;
    }
  }
  const module = new vm.SourceTextModule(source, options(undefined));
  reexports.set(source, module.createCachedData());
  return module;
}

/** What the running file's built-ins' modules take again as the built-ins' exports are synced. */
let syncs = [];
const syncBuiltins = nodeModule.syncBuiltinESMExports;
nodeModule.syncBuiltinESMExports = function syncBuiltinESMExports() {
  syncBuiltins();
  for (const sync of syncs) sync();
};
// node:module's own namespace now exports the function above.
syncBuiltins();

/**
 * Imports the bundle at `entry` (a path in a build or a slot of it): resolves once its every module has run (with its
 * top-level await), rejects with what a module threw. A module not in a build is Node's loader's to import.
 */
export async function importBundle(entry) {
  const root = rootOf(entry);
  if (root === null) return import(pathToFileURL(entry).href);
  const build = buildName(root);
  /** @type {(spec: string, attributes?: object) => Promise<object>} */
  const { loadPackage } = await import(pathToFileURL(resolve(root, PACKAGE_LOADER)).href);
  /** This file's instance of each chunk, and each module's path. */
  const modules = new Map();
  const pathOf = new WeakMap();
  /** This file's module re-exporting each package it imports statically. */
  const packages = new Map();
  held = { modules, packages };
  syncs = [];

  const inBuild = (path) => path.startsWith(`${root}/`) && path.endsWith('.mjs');
  const chunk = (path) => {
    let module = modules.get(path);
    if (module) return module;
    // Every slot's copy is compiled under the build's own path: the name a code cache keeps (CACHE_DIR).
    const built = join(dirname(root), build, path.slice(root.length + 1));
    let known = chunks.get(built);
    if (known === undefined) {
      const source = readFileSync(path, 'utf8');
      const file = cacheFile(built, source);
      known = { source, file, cachedData: file === null ? undefined : readCache(file) };
      chunks.set(built, known);
    }
    const url = pathToFileURL(path).href;
    const compile = (cachedData) =>
      new vm.SourceTextModule(known.source, {
        identifier: pathToFileURL(built).href,
        cachedData,
        initializeImportMeta: (meta) => {
          meta.url = url;
        },
        importModuleDynamically: (spec, _referrer, attributes) => dynamicImport(spec, path, attributes),
      });
    try {
      module = compile(known.cachedData);
    } catch (err) {
      // A cache V8 will not take (another Node's, other flags', a torn file): a SourceTextModule throws on it.
      if (known.cachedData === undefined || err?.code !== 'ERR_VM_MODULE_CACHED_DATA_REJECTED') throw err;
      known.cachedData = undefined;
      module = compile(undefined);
    }
    if (known.file !== null && known.cachedData === undefined) {
      known.cachedData = module.createCachedData();
      writeCache(known.file, known.cachedData);
    }
    modules.set(path, module);
    pathOf.set(module, path);
    return module;
  };
  const packageModule = (spec, attributes) => {
    const id = attributes && Object.keys(attributes).length > 0 ? `${spec} ${JSON.stringify(attributes)}` : spec;
    // Set before it is loaded: the chunks' imports of one package are linked at once, and each is to get this one.
    let module = packages.get(id);
    if (module === undefined) {
      module = loadPackage(spec, attributes).then((namespace) => reexporting(spec, namespace));
      packages.set(id, module);
    }
    return module;
  };
  const link = (spec, referrer, extra) => {
    if (spec.startsWith('./') || spec.startsWith('../')) {
      const path = resolve(dirname(pathOf.get(referrer)), spec);
      return inBuild(path) ? chunk(path) : packageModule(pathToFileURL(path).href, extra?.attributes);
    }
    return packageModule(spec, extra?.attributes);
  };
  /** Each import()'s link of a chunk: one a static import or an earlier import() reached is linked already. */
  const links = new WeakMap();
  const linkOnce = (module) => {
    let linking = links.get(module);
    if (linking === undefined) {
      linking = module.status === 'unlinked' ? module.link(link) : Promise.resolve();
      links.set(module, linking);
    }
    return linking;
  };
  const dynamicImport = async (spec, from, attributes) => {
    if (spec.startsWith('./') || spec.startsWith('../')) {
      const path = resolve(dirname(from), spec);
      if (inBuild(path)) {
        const module = chunk(path);
        await linkOnce(module);
        await module.evaluate();
        return module;
      }
      return loadPackage(pathToFileURL(path).href, attributes);
    }
    return loadPackage(spec, attributes);
  };

  const module = chunk(entry);
  await module.link(link);
  await module.evaluate();
}
