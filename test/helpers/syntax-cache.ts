/**
 * What the architecture tests read from a source's syntax tree (its imports, exports, functions), kept on disk by the
 * source's hash, so that a file unchanged since the last run is not parsed again, and TypeScript's compiler is loaded
 * only when some file did change: loading it and parsing src/ with it was most of those tests' CPU (~5 s each, the
 * parser's code compiled by V8 and its trees collected). One JSON file per kind of fact in
 * node_modules/.cache/sluice-syntax/, written at exit when anything was read anew (atomically: a run that reads it
 * meanwhile sees the old or the new one), holding what this run asked for; a fact of another kind or reader version
 * is another entry, so a change to the reading code reads every file anew.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type ts from 'typescript';

const require = createRequire(import.meta.url);
const DIR = join(fileURLToPath(new URL('../../node_modules/.cache/sluice-syntax/', import.meta.url)));

let compiler: typeof ts | undefined;
/** TypeScript's compiler, loaded when first needed (a cache miss). */
export function typescript(): typeof ts {
  return (compiler ??= require('typescript') as typeof ts);
}

const sha1 = (text: string | Buffer): string => createHash('sha1').update(text).digest('hex');

interface Kind {
  /** The entries read from disk (hash → facts). */
  stored: Map<string, unknown>;
  /** The entries this run asked for, to be written back. */
  used: Map<string, unknown>;
  added: boolean;
}
const kinds = new Map<string, Kind>();

function kindOf(name: string): Kind {
  let kind = kinds.get(name);
  if (kind !== undefined) return kind;
  let stored = new Map<string, unknown>();
  try {
    stored = new Map(Object.entries(JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8'))));
  } catch {
    /* none yet, or unreadable: every fact is read anew */
  }
  kinds.set(name, (kind = { stored, used: new Map(), added: false }));
  return kind;
}

process.on('exit', () => {
  for (const [name, kind] of kinds) {
    if (!kind.added) continue;
    try {
      mkdirSync(DIR, { recursive: true });
      const tmp = join(DIR, `${name}.json.${process.pid}.${Math.random().toString(36).slice(2)}`);
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(kind.used)));
      renameSync(tmp, join(DIR, `${name}.json`));
    } catch {
      /* a read-only tree: the next run parses again */
    }
  }
});

/**
 * The facts `read` gives for `source` (JSON-safe), from the cache when this reader (`readerUrl`: the module that
 * holds `read`, whose own text is part of the key) read the same source before.
 */
export function cachedFacts<T>(kindName: string, readerUrl: string, source: string, read: () => T): T {
  const kind = kindOf(kindName);
  const key = sha1(`${readerVersion(readerUrl)}\n${source}`);
  if (kind.used.has(key)) return kind.used.get(key) as T;
  let facts = kind.stored.get(key) as T | undefined;
  if (facts === undefined) {
    facts = read();
    kind.added = true;
  }
  kind.used.set(key, facts);
  return facts;
}

const versions = new Map<string, string>();
/** A reader module's text and TypeScript's version, hashed: what else its facts depend on. */
function readerVersion(url: string): string {
  let version = versions.get(url);
  if (version === undefined) {
    const tsVersion = (
      JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')) as { version: string }
    ).version;
    versions.set(url, (version = sha1(`${tsVersion}\n${readFileSync(fileURLToPath(url), 'utf8')}`)));
  }
  return version;
}
