/**
 * What the architecture tests read from a source's syntax (its imports, exports, functions), kept on disk by the
 * source's hash, so that a file unchanged since the last run is not read again (reading src/ cold is ~1 s of CPU with
 * the token scan, 3.4–4.4 s with TypeScript's parser, which the scan leaves only what it does not read). One JSON file
 * per kind of fact in node_modules/.cache/sluice-syntax/, written as the test file ends when anything was read anew
 * (atomically: a run that reads it meanwhile sees the old or the new one): what this thread asked for, and what the
 * file holds then that was asked for within MAX_AGE_MS (the other test's own sources, such as its fixtures: a write of
 * only what one test asked for dropped the other's, and every run read them again); a fact of another kind or reader
 * version is another entry, so a change to the reading code reads every file anew.
 *
 * Both architecture tests read the same files and start together: on a fresh clone, or after an edit, each would parse
 * the files the cache lacks. So a thread's first miss takes the parser's turn (`parsing.lock`, made exclusively); a
 * thread that finds the turn taken waits, without CPU, until the holder has written what it read and ended, and reads
 * that back. A holder that died (its process is gone, or it held the turn MAX_TURN_MS) loses the turn; a thread that
 * waited MAX_WAIT_MS parses for itself.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type ts from 'typescript';
import { atFileEnd } from './file-end.mjs';

const require = createRequire(import.meta.url);
const DIR = join(fileURLToPath(new URL('../../node_modules/.cache/sluice-syntax/', import.meta.url)));
/** A turn held this long is a holder that died without giving it back (a terminated thread). */
const MAX_TURN_MS = 120_000;
const MAX_WAIT_MS = 180_000;
const POLL_MS = 50;
/** An entry no run asked for in this long is dropped at the next write (a source as it was before an edit). */
const MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** The files' layout: `{ format, entries: { [key]: { t, facts } } }`, t the time the entry was last asked for. */
const FORMAT = 2;

interface StoredEntry {
  t: number;
  facts: unknown;
}

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

export interface SyntaxCache {
  /**
   * The facts `read` gives for `source` (JSON-safe), from the cache when this reader (`readerUrl`: the module that
   * holds `read`, whose own text is part of the key) read the same source before.
   */
  cachedFacts<T>(kindName: string, readerUrl: string | readonly string[], source: string, read: () => T): T;
  /**
   * Writes what was read anew and gives the parser's turn back (the default cache does it as the test file ends:
   * test/helpers/file-end.mjs).
   */
  flush(): void;
}

/** A cache in `dir` (the tests' own is node_modules/.cache/sluice-syntax/, flushed as the test file ends). */
export function syntaxCache(dir: string): SyntaxCache {
  const lock = join(dir, 'parsing.lock');
  const kinds = new Map<string, Kind>();
  /** 'mine': this thread holds the parser's turn; 'alone': it parses without it. Unset before the first miss. */
  let turn: 'mine' | 'alone' | undefined;

  const storedEntries = (name: string): Map<string, StoredEntry> => {
    try {
      const file = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as {
        format?: number;
        entries?: Record<string, StoredEntry>;
      };
      return file.format === FORMAT && file.entries !== undefined ? new Map(Object.entries(file.entries)) : new Map();
    } catch {
      return new Map(); // none yet, or unreadable: every fact is read anew
    }
  };
  const storedFacts = (name: string): Map<string, unknown> =>
    new Map([...storedEntries(name)].map(([key, entry]) => [key, entry.facts]));

  const kindOf = (name: string): Kind => {
    let kind = kinds.get(name);
    if (kind === undefined) kinds.set(name, (kind = { stored: storedFacts(name), used: new Map(), added: false }));
    return kind;
  };

  const holderDied = (): boolean => {
    try {
      const pid = Number(readFileSync(lock, 'utf8'));
      if (Date.now() - statSync(lock).mtimeMs > MAX_TURN_MS) return true;
      process.kill(pid, 0);
      return false;
    } catch (err) {
      // ENOENT: the turn was just given back; ESRCH: its process is gone.
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  };

  /**
   * On the first miss: the parser's turn, or a wait for the thread that holds it, after which what that thread wrote
   * is read back (true: the stored facts were read again).
   */
  const takeTurn = (): boolean => {
    if (turn !== undefined) return false;
    const waitUntil = Date.now() + MAX_WAIT_MS;
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    let waited = false;
    for (;;) {
      try {
        mkdirSync(dir, { recursive: true });
        writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
        turn = 'mine';
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > waitUntil) {
          turn = 'alone'; // a read-only tree, or a holder that takes too long: parse without the turn
          break;
        }
      }
      if (holderDied()) rmSync(lock, { force: true });
      else {
        waited = true;
        Atomics.wait(sleeper, 0, 0, POLL_MS);
      }
    }
    if (waited) for (const [name, kind] of kinds) kind.stored = storedFacts(name);
    return waited;
  };

  return {
    cachedFacts<T>(kindName: string, readerUrl: string | readonly string[], source: string, read: () => T): T {
      const kind = kindOf(kindName);
      const key = sha1(`${readerVersion(readerUrl)}\n${source}`);
      if (kind.used.has(key)) return kind.used.get(key) as T;
      let facts = kind.stored.get(key) as T | undefined;
      if (facts === undefined && takeTurn()) facts = kind.stored.get(key) as T | undefined;
      if (facts === undefined) {
        facts = read();
        kind.added = true;
      }
      kind.used.set(key, facts);
      return facts;
    },
    flush(): void {
      for (const [name, kind] of kinds) {
        if (!kind.added) continue;
        try {
          mkdirSync(dir, { recursive: true });
          const now = Date.now();
          // Read again: the other test may have written since this one read.
          const entries: Record<string, StoredEntry> = {};
          for (const [key, entry] of storedEntries(name)) if (now - entry.t <= MAX_AGE_MS) entries[key] = entry;
          for (const [key, facts] of kind.used) entries[key] = { t: now, facts };
          const tmp = join(dir, `${name}.json.${process.pid}.${Math.random().toString(36).slice(2)}`);
          writeFileSync(tmp, JSON.stringify({ format: FORMAT, entries }));
          renameSync(tmp, join(dir, `${name}.json`));
          kind.added = false;
        } catch {
          /* a read-only tree: the next run parses again */
        }
      }
      if (turn === 'mine') rmSync(lock, { force: true });
      turn = undefined;
    },
  };
}

const tests = syntaxCache(DIR);
atFileEnd(() => tests.flush());

/** The architecture tests' cache (syntaxCache): `cachedFacts` of node_modules/.cache/sluice-syntax/. */
export function cachedFacts<T>(
  kindName: string,
  readerUrl: string | readonly string[],
  source: string,
  read: () => T,
): T {
  return tests.cachedFacts(kindName, readerUrl, source, read);
}

const versions = new Map<string, string>();
/** The reader modules' texts and TypeScript's version, hashed: what else their facts depend on. */
function readerVersion(urls: string | readonly string[]): string {
  const list = typeof urls === 'string' ? [urls] : urls;
  const key = list.join('\n');
  let version = versions.get(key);
  if (version === undefined) {
    const tsVersion = (
      JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')) as { version: string }
    ).version;
    const texts = list.map((url) => readFileSync(fileURLToPath(url), 'utf8'));
    versions.set(key, (version = sha1([tsVersion, ...texts].join('\n'))));
  }
  return version;
}
