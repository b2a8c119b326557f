#!/usr/bin/env node
// The edit loop's watch mode (`npm run test:watch`): runs the chosen files once, then on every change under src/,
// workers/ or test/ runs again the test files that import the changed file, directly or through others (the import
// graph esbuild reads: static imports, and dynamic imports of a literal path), each through test/run.mjs as usual.
// Usage: node test/watch.mjs [--tier <tier>[,<tier>]]... [substring...]   (default: --tier fast)
import { spawn } from 'node:child_process';
import { readFileSync, watch } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { chooseFiles, declaration, testFiles, tierArgs } from './helpers/prerequisites.mjs';

const testDir = new URL('.', import.meta.url).pathname;
const repo = resolve(testDir, '..');
const args = process.argv.slice(2);
if (!args.some((a) => a === '--tier' || a.startsWith('--tier='))) args.unshift('--tier', 'fast');
const chosenBy = tierArgs(args);
if ('error' in chosenBy) {
  console.error(`[watch] ${chosenBy.error}`);
  process.exit(2);
}
const { tiers, filters } = chosenBy;
const { unmatched } = chooseFiles(testFiles(testDir), testDir, filters, process.cwd());
if (unmatched.length > 0) {
  console.error(`[watch] no test file matches ${unmatched.map((s) => `'${s}'`).join(', ')}`);
  process.exit(2);
}

/** The chosen test files (as test/run.mjs chooses them). */
function chosen() {
  return chooseFiles(testFiles(testDir), testDir, filters, process.cwd()).chosen.filter((f) => {
    const d = declaration(readFileSync(f, 'utf8'));
    return 'error' in d || tiers.includes(d.tier);
  });
}

/** For each module of the repo (path relative to it), the chosen test files that reach it. */
async function reachedBy(files) {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    absWorkingDir: repo,
    entryPoints: files.map((f) => relative(repo, f)),
    outdir: join(repo, 'node_modules', '.cache', 'sluice-watch'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    packages: 'external',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const imports = new Map(Object.entries(result.metafile.inputs).map(([p, i]) => [p, i.imports.map((x) => x.path)]));
  const reached = new Map();
  for (const file of files) {
    const seen = new Set([relative(repo, file)]);
    for (const path of seen) for (const next of imports.get(path) ?? []) if (imports.has(next)) seen.add(next);
    for (const path of seen) reached.set(path, [...(reached.get(path) ?? []), file]);
  }
  return reached;
}

let running = null;
let pending = new Set();
let graph = new Map();

async function refreshGraph() {
  try {
    graph = await reachedBy(chosen());
  } catch (err) {
    // A file esbuild cannot read (mid-edit): the graph stays as it was; the next save builds it again.
    console.log(`[watch] the import graph could not be read: ${String(err?.message ?? err).split('\n')[0]}`);
  }
}

/** Runs the files given, or the whole choice at the start. */
function run(files) {
  const tierArgs = tiers.length > 0 ? ['--tier', tiers.join(',')] : [];
  const names = files ? files.map((f) => relative(testDir, f)) : filters;
  running = spawn(process.execPath, [join(testDir, 'run.mjs'), ...tierArgs, ...names], { stdio: 'inherit' });
  running.once('exit', async () => {
    running = null;
    await refreshGraph();
    console.log(`[watch] waiting for changes under src/, workers/, test/ (${graph.size} modules watched)`);
    if (pending.size > 0) flush();
  });
}

let timer;
function flush() {
  if (running) return;
  const changed = [...pending];
  pending = new Set();
  const files = new Set();
  for (const path of changed) {
    for (const f of graph.get(path) ?? []) files.add(f);
    if (path.endsWith('.test.ts') && chosen().includes(join(repo, path))) files.add(join(repo, path));
  }
  if (files.size === 0) {
    console.log(`[watch] ${changed.join(', ')}: no chosen test file imports it`);
    return;
  }
  console.log(`\n[watch] ${changed.join(', ')} changed: ${files.size} file(s)`);
  run([...files].sort());
}

for (const dir of ['src', 'workers', 'test']) {
  watch(join(repo, dir), { recursive: true }, (_event, name) => {
    if (!name || !/\.(ts|mts|mjs|js|json)$/.test(name)) return;
    pending.add(`${dir}/${name}`);
    clearTimeout(timer);
    timer = setTimeout(flush, 150);
  });
}
run(null);
