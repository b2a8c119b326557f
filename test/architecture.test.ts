// tier: fast
/**
 * The rule test for src/'s shape (DESIGN.md "Layout"): no folder-level import cycle, and every import from outside a
 * folder goes through that folder's index.ts. The checker is test/helpers/import-graph.ts, tried first on a synthetic
 * graph so that this test can fail. ALLOWED lists the violations that remain, each with its reason; an entry that no
 * longer happens fails the test too, so the list only shrinks.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkImports, describeCycle, relativeSpecifiers, resolveSpecifier, type ImportEdge,
} from './helpers/import-graph.ts';

const SRC = new URL('../src/', import.meta.url).pathname;

interface AllowedDeep { file: string; specifier: string; reason: string }
interface AllowedCycle { folders: string[]; reason: string }

const LAZY = 'a lazy entry point: the demo\'s simulated ndsctl client is its own short-lived process, and loading demo/index.ts '
  + 'would initialise the whole daemon for every simulated ndsctl call';

/** Violations that remain, each with its reason; an entry that no longer happens fails the test, so the list only shrinks. */
const ALLOWED: { deep: AllowedDeep[]; cycles: AllowedCycle[] } = {
  deep: [
    { file: 'src/main.ts', specifier: './demo/ndsctl-client.ts', reason: LAZY },
  ],
  cycles: [],
};

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function srcEdges(): { edges: ImportEdge[]; unresolved: string[] } {
  const edges: ImportEdge[] = [];
  const unresolved: string[] = [];
  const exists = (p: string): boolean => existsSync(join(SRC, p)) && statSync(join(SRC, p)).isFile();
  for (const path of sourceFiles(SRC)) {
    const from = relative(SRC, path).split(sep).join('/');
    for (const specifier of relativeSpecifiers(readFileSync(path, 'utf8'))) {
      // A data file outside src/ (luci-app's rules.json) is no part of the folder graph.
      if (relative(SRC, resolve(dirname(path), specifier)).startsWith('..')) continue;
      const to = resolveSpecifier(from, specifier, exists);
      if (to === null) unresolved.push(`src/${from} imports '${specifier}'`);
      else edges.push({ from, specifier, to });
    }
  }
  return { edges, unresolved };
}

test('the checker reports a folder cycle with one import per edge, and a deep import', () => {
  const edges: ImportEdge[] = [
    { from: 'a/x.ts', specifier: '../b/index.ts', to: 'b/index.ts' },
    { from: 'b/y.ts', specifier: '../c/index.ts', to: 'c/index.ts' },
    { from: 'c/z.ts', specifier: '../a/x.ts', to: 'a/x.ts' },
    { from: 'c/z.ts', specifier: '../a/index.ts', to: 'a/index.ts' },
    { from: 'd/w.ts', specifier: '../a/index.ts', to: 'a/index.ts' },
    { from: 'a/x.ts', specifier: '../errors.ts', to: 'errors.ts' },
    { from: 'daemon.ts', specifier: './d/w.ts', to: 'd/w.ts' },
    { from: 'a/x.ts', specifier: './sub/v.ts', to: 'a/sub/v.ts' },
  ];
  const report = checkImports(edges);
  assert.equal(report.cycles.map((c) => c.folders), [['a', 'b', 'c']]);
  assert.equal(report.cycles[0]!.edges.map((e) => `${e.from} ${e.specifier}`).sort(),
    ['a/x.ts ../b/index.ts', 'b/y.ts ../c/index.ts', 'c/z.ts ../a/x.ts']);
  assert.ok(describeCycle(report.cycles[0]!).includes("c -> a: src/c/z.ts imports '../a/x.ts'"));
  assert.equal(report.deep.map((e) => `${e.from} ${e.specifier}`), ['c/z.ts ../a/x.ts', 'daemon.ts ./d/w.ts']);
});

test('the checker finds no cycle in a layered graph and resolves specifiers as Node would', () => {
  const report = checkImports([
    { from: 'a/x.ts', specifier: '../b/index.ts', to: 'b/index.ts' },
    { from: 'b/y.ts', specifier: '../c/index.ts', to: 'c/index.ts' },
  ]);
  assert.equal(report, { cycles: [], deep: [] });
  const files = new Set(['a/x.ts', 'b/index.ts', 'errors.ts']);
  const exists = (p: string): boolean => files.has(p);
  assert.is(resolveSpecifier('a/y.ts', '../b/index.ts', exists), 'b/index.ts');
  assert.is(resolveSpecifier('a/y.ts', '../b', exists), 'b/index.ts');
  assert.is(resolveSpecifier('a/y.ts', './x.js', exists), 'a/x.ts');
  assert.is(resolveSpecifier('a/y.ts', '../../outside.ts', exists), null);
  assert.equal(relativeSpecifiers([
    "import { a } from './a.ts';",
    "export type { B } from '../b/index.ts';",
    "// import { c } from './c.ts';",
    "const d = await import('./d.ts');",
    "import { readFileSync } from 'node:fs';",
  ].join('\n')), ['./a.ts', '../b/index.ts', './d.ts']);
});

test('src/ has no folder cycle and no import past a folder\'s index.ts (beyond the allowlist)', () => {
  const { edges, unresolved } = srcEdges();
  assert.equal(unresolved, [], 'every relative import resolves to a file under src/');
  const report = checkImports(edges);
  const problems: string[] = [];

  const allowedCycles = new Set(ALLOWED.cycles.map((c) => [...c.folders].sort().join(',')));
  const foundCycles = new Set(report.cycles.map((c) => c.folders.join(',')));
  for (const cycle of report.cycles) {
    if (!allowedCycles.has(cycle.folders.join(','))) problems.push(`folder cycle ${describeCycle(cycle)}`);
  }
  for (const key of allowedCycles) if (!foundCycles.has(key)) problems.push(`allowlisted cycle ${key} is gone: remove it from ALLOWED`);

  const key = (file: string, specifier: string): string => `${file} '${specifier}'`;
  const allowedDeep = new Set(ALLOWED.deep.map((d) => key(d.file, d.specifier)));
  const foundDeep = new Set(report.deep.map((e) => key(`src/${e.from}`, e.specifier)));
  for (const e of report.deep) {
    const k = key(`src/${e.from}`, e.specifier);
    if (!allowedDeep.has(k)) problems.push(`${k} skips ${e.to.split('/')[0]}/index.ts`);
  }
  for (const k of allowedDeep) if (!foundDeep.has(k)) problems.push(`allowlisted ${k} is gone: remove it from ALLOWED`);

  assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
});

test.run();
