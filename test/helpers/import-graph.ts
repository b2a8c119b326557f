/**
 * The folder rules of src/ (the design's "Layout": one public index.ts per folder) as pure functions over an import
 * graph, so the rule test can be tried on a synthetic graph: no two folders reach each other through any chain of
 * imports, and an import from outside a folder names that folder's index.ts. A top-level file (src/errors.ts,
 * src/daemon.ts) is not a folder: importing one is never deep, and it is no node of a cycle (it may still import deep
 * into a folder). Paths are relative to src/, with '/' separators.
 */
import { syntaxFacts, type ImportedNames } from './syntax-facts.ts';

export type { ImportedNames };

export interface ImportEdge {
  /** The importing file, e.g. 'payments/voucher.ts'. */
  from: string;
  /** As written in the source, e.g. '../radius/index.ts'. */
  specifier: string;
  /** The file it resolves to. */
  to: string;
}

export interface FolderCycle {
  /** The folders that reach each other, sorted. */
  folders: string[];
  /** One import for every folder-to-folder edge inside the cycle. */
  edges: ImportEdge[];
}

export interface ImportReport {
  cycles: FolderCycle[];
  /** Imports from outside a folder that name a file of it other than its index.ts. */
  deep: ImportEdge[];
}

/**
 * The relative specifiers of a module, each once: import/export … from, bare import, import() (types too); comments
 * skipped (syntax-facts.ts: one parse of a file for every fact the architecture tests read).
 */
export function relativeSpecifiers(source: string): string[] {
  return importedNames(source).map((i) => i.specifier);
}

/** The folder directly under src/ that holds a path, or null for a top-level file. */
export function folderOf(path: string): string | null {
  const slash = path.indexOf('/');
  return slash === -1 ? null : path.slice(0, slash);
}

function normalize(parts: string[]): string | null {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (out.length === 0) return null;
      out.pop();
    } else out.push(p);
  }
  return out.join('/');
}

/** The src/ file a specifier names (as Node's ESM resolution with .ts extensions would), or null if none / outside. */
export function resolveSpecifier(from: string, specifier: string, exists: (path: string) => boolean): string | null {
  const base = normalize([...from.split('/').slice(0, -1), ...specifier.split('/')]);
  if (base === null) return null;
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, `${base}/index.ts`];
  return candidates.find((c) => c !== '' && exists(c)) ?? null;
}

/** Folder cycles (strongly connected components of the folder graph, Tarjan) and deep imports. */
export function checkImports(edges: readonly ImportEdge[]): ImportReport {
  const deep: ImportEdge[] = [];
  /** from folder → to folder → the first import seen. */
  const graph = new Map<string, Map<string, ImportEdge>>();
  for (const e of edges) {
    const a = folderOf(e.from);
    const b = folderOf(e.to);
    if (b === null || a === b) continue;
    if (e.to !== `${b}/index.ts`) deep.push(e);
    if (a === null) continue;
    let out = graph.get(a);
    if (!out) graph.set(a, (out = new Map()));
    if (!out.has(b)) out.set(b, e);
  }

  const components = stronglyConnected(graph);

  const cycles = components
    .map((folders) => {
      const inside = new Set(folders);
      const cycleEdges: ImportEdge[] = [];
      for (const a of folders) {
        for (const [b, e] of graph.get(a) ?? []) if (inside.has(b)) cycleEdges.push(e);
      }
      return { folders, edges: cycleEdges };
    })
    .sort((x, y) => x.folders.join().localeCompare(y.folders.join()));
  return { cycles, deep };
}

/**
 * The cycles between files: for each strongly connected component of the file graph (Tarjan) of more than one file,
 * one shortest circle through its first file, as the imports that close it (a → b → … → a). A type-only import counts:
 * a reader starts from a folder's leaves and reads up either way.
 */
export function fileCycles(edges: readonly ImportEdge[]): ImportEdge[][] {
  const graph = new Map<string, Map<string, ImportEdge>>();
  for (const e of edges) {
    if (e.from === e.to) continue;
    let out = graph.get(e.from);
    if (!out) graph.set(e.from, (out = new Map()));
    if (!out.has(e.to)) out.set(e.to, e);
  }
  const components = stronglyConnected(graph);
  return components.map((component) => {
    const inside = new Set(component);
    const start = component[0]!;
    // Breadth first from start, inside the component, back to start: the shortest circle through it.
    const via = new Map<string, ImportEdge>();
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      for (const [next, e] of graph.get(queue[i]!) ?? []) {
        if (!inside.has(next) || via.has(next)) continue;
        via.set(next, e);
        if (next === start) break;
        queue.push(next);
      }
      if (via.has(start)) break;
    }
    const circle: ImportEdge[] = [];
    for (let at = start; circle.length === 0 || at !== start;) {
      const e = via.get(at)!;
      circle.unshift(e);
      at = e.from;
    }
    return circle;
  });
}

/** The components of more than one node of a graph, each sorted, in order of their first node. */
function stronglyConnected(graph: ReadonlyMap<string, ReadonlyMap<string, unknown>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) strong(v);
  return components.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** A file cycle as one line: `a.ts -> b.ts -> a.ts`, each import as written. */
export function describeFileCycle(circle: readonly ImportEdge[]): string {
  return [circle[0]!.from, ...circle.map((e) => `${e.to} ('${e.specifier}')`)].join(' -> ');
}

/** One line per edge of a cycle: `payments -> merchant: payments/types.ts imports '../merchant/types.ts'`. */
export function describeCycle(cycle: FolderCycle): string {
  return `${cycle.folders.join(' <-> ')}\n${cycle.edges
    .map((e) => `  ${folderOf(e.from)} -> ${folderOf(e.to)}: src/${e.from} imports '${e.specifier}'`)
    .join('\n')}`;
}

/**
 * The names a module takes from each relative specifier (static and dynamic imports, re-exports, `import('x').T`
 * types); one entry per specifier. A whole-module use (`import * as`, `export *`, a dynamic import kept whole) is '*'.
 */
export function importedNames(source: string): ImportedNames[] {
  return syntaxFacts(source).imports.map(({ specifier, names }) => ({
    specifier,
    names: names === '*' ? '*' : new Set(names),
  }));
}

/**
 * The names a module exports, as written (`export const|function|class|interface|type|enum`, `export { a as b }`,
 * `export default`); `export * from 'x'` asks `starOf` for x's names (null: not followed).
 */
export function exportedNames(source: string, starOf: (specifier: string) => Iterable<string> | null): Set<string> {
  const names = new Set<string>();
  for (const entry of syntaxFacts(source).exports) {
    if (typeof entry === 'string') names.add(entry);
    else for (const n of (entry.star === null ? null : starOf(entry.star)) ?? []) if (n !== 'default') names.add(n);
  }
  return names;
}
