// tier: peers
// The syntax facts the architecture tests read from tokens (test/helpers/syntax-scan.ts) against those TypeScript's
// own parser gives (syntax-facts.ts's tsFacts), on every TypeScript source of the repository: the same imports with the
// same names, in the same order, the same exports and the same functions with their lines and positional parameters.
// A source the scan does not read is left to TypeScript by syntaxFacts; this file names those it meets. And the
// comments scripts/wrap-comments.ts finds from tokens are those TypeScript's tree has. It loads TypeScript, which the
// fast tier no longer does: the reference the readers are held to, in a tier that runs it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commentRanges, tsCommentRanges } from '../scripts/wrap-comments.ts';
import { syntaxFacts, tsFacts } from './helpers/syntax-facts.ts';
import { scanFacts, UnsupportedSyntax } from './helpers/syntax-scan.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (name === 'node_modules' || name === 'fixtures') return [];
      if (statSync(path).isDirectory()) return sources(path);
      return /\.(ts|mts|mjs|js)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
    });
}

function everySource(): string[] {
  return ['src', 'workers', 'test', 'bench', 'scripts'].flatMap((d) => sources(join(ROOT, d)));
}

/** The first place two lists of facts part, as one line. */
function firstDifference(kind: string, scanned: unknown[], parsed: unknown[]): string | null {
  for (let i = 0; i < Math.max(scanned.length, parsed.length); i++) {
    const a = JSON.stringify(scanned[i]);
    const b = JSON.stringify(parsed[i]);
    if (a !== b) return `${kind}[${i}]: the scan ${a ?? 'nothing'}, TypeScript ${b ?? 'nothing'}`;
  }
  return null;
}

test("the scan's facts are TypeScript's on every source of src/, workers/, test/, bench/ and scripts/", () => {
  const files = everySource().filter((path) => path.endsWith('.ts'));
  assert.ok(files.length > 1000, `${files.length} sources`);
  const problems: string[] = [];
  const left: string[] = [];
  for (const path of files) {
    const source = readFileSync(path, 'utf8');
    const name = relative(ROOT, path);
    let scanned;
    try {
      scanned = scanFacts(source);
    } catch (err) {
      if (!(err instanceof UnsupportedSyntax)) throw err;
      left.push(`${name}: ${err.message}`);
      continue;
    }
    const parsed = tsFacts(source);
    for (const kind of ['imports', 'exports', 'functions'] as const) {
      const difference = firstDifference(kind, scanned[kind], parsed[kind]);
      if (difference !== null) problems.push(`${name} ${difference}`);
    }
  }
  console.log(`# ${files.length} sources, ${left.length} left to TypeScript${left.map((l) => `\n#   ${l}`).join('')}`);
  assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
});

test("the comments read from tokens are TypeScript's on every source, .mjs and .js included", () => {
  const problems: string[] = [];
  for (const path of everySource()) {
    const source = readFileSync(path, 'utf8');
    const scanned = JSON.stringify(commentRanges(source, path));
    const parsed = JSON.stringify(tsCommentRanges(source, path));
    if (scanned !== parsed)
      problems.push(`${relative(ROOT, path)}: ${scanned.length} against ${parsed.length} characters`);
  }
  assert.ok(problems.length === 0, `\n${problems.join('\n')}\n`);
});

test('a source the scan does not read gets its facts from TypeScript', () => {
  const source = [
    "import { a } from './a.ts';",
    'namespace N {',
    '  export const f = (x: number, y: number): number => x + y;',
    '}',
    'export function g(p: string): string {',
    '  return p;',
    '}',
  ].join('\n');
  assert.throws(
    () => scanFacts(source),
    (err: unknown) => err instanceof UnsupportedSyntax,
  );
  assert.equal(syntaxFacts(source), tsFacts(source));
  assert.equal(
    syntaxFacts(source).functions.map((f) => `${f.name} ${f.positional} ${f.lines}`),
    ['f 2 1', 'g 1 3'],
  );
});

test.run();
