// tier: fast
// The scan of a source's syntax facts (test/helpers/syntax-scan.ts) on the constructs it must tell apart: type
// arguments from comparisons, an arrow's return type from a ternary, a regular expression from a division, a method of
// an object literal from one of a class, and the names TypeScript's tree gives each function. The whole repository is
// compared with TypeScript's own parse in test/syntax-scan-typescript.test.ts (peers tier).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { scanFacts, UnsupportedSyntax } from './helpers/syntax-scan.ts';

const SOURCE = [
  "import type { A } from './a.ts';",
  "import def, { b as c, type D } from './b.ts';",
  "export * from './star.ts';",
  "export * as ns from './ns.ts';",
  "export { e, f as g } from './e.ts';",
  "type T = import('./t.ts').Q.R | typeof import('./u.ts');",
  'export default function (x: Record<string, number>, y = (z: number) => z > 1): void {}',
  'export class K<V = string> extends Base<{ a: 1 }> implements I {',
  '  private readonly m = new Map<string, (v: V) => void>();',
  '  handler = async ({ a }: { a: string }, b: number): Promise<void> => {',
  '    const inner = [1, 2].filter((n): n is number => n! / 2 > 0);',
  '  };',
  '  static {',
  '    void (() => 1);',
  '  }',
  '  get size(): number {',
  '    return this.m.size;',
  '  }',
  '  *[Symbol.iterator](): Iterator<number> {}',
  "  'quoted-name'(): void {",
  '    const o = { key: () => 1, method(p: string) {}, nested: cond ? () => 2 : () => 3 };',
  '    const t = `${((q: number) => q)(1)}`;',
  '  }',
  '}',
  'export function over(a: string): void;',
  'export function over(a: number): void;',
  'export function over(a: unknown): void {',
  '  switch (a) {',
  '    case 1: {',
  "      const { h, i: j } = await import('./h.ts');",
  '      break;',
  '    }',
  '    default:',
  "      (await import('./w.ts')).w(/[a-z]\\/}/g);",
  '  }',
  '}',
  'export const fn = function named() {}, other = (() => {}) as unknown, [p1, p2] = [1, 2];',
  "export interface I { x: (y: number) => import('./i.ts').J }",
].join('\n');

test('imports with the names taken, from declarations, re-exports, dynamic imports and import types', () => {
  assert.equal(scanFacts(SOURCE).imports, [
    { specifier: './a.ts', names: ['A'] },
    { specifier: './b.ts', names: ['default', 'b', 'D'] },
    { specifier: './star.ts', names: '*' },
    { specifier: './ns.ts', names: '*' },
    { specifier: './e.ts', names: ['e', 'f'] },
    { specifier: './t.ts', names: ['Q'] },
    { specifier: './u.ts', names: '*' },
    { specifier: './h.ts', names: ['h', 'i'] },
    { specifier: './w.ts', names: ['w'] },
    { specifier: './i.ts', names: ['J'] },
  ]);
});

test('exports as written, an overload once per signature', () => {
  assert.equal(scanFacts(SOURCE).exports, [
    { star: './star.ts' },
    'ns',
    'e',
    'g',
    'default',
    'K',
    'over',
    'over',
    'over',
    'fn',
    'other',
    'I',
  ]);
});

test('functions with bodies, named as TypeScript tree names them, with their first line, length and positional', () => {
  const seen = scanFacts(SOURCE).functions.map((f) => `${f.name} ${f.line} ${f.lines} ${f.positional}`);
  assert.equal(seen, [
    ' 7 1 2',
    '/(arrow) 7 1 1',
    'K.handler 10 3 1',
    'K.handler/(arrow) 11 1 1',
    '(arrow) 14 1 0',
    'K.size 16 3 0',
    'K.[Symbol.iterator] 19 1 0',
    "K.'quoted-name' 20 4 0",
    'key 21 1 0',
    'K.method 21 1 1',
    "K.'quoted-name'/(arrow) 21 1 0",
    "K.'quoted-name'/(arrow) 21 1 0",
    "K.'quoted-name'/(arrow) 22 1 1",
    'over 27 10 1',
    'fn 37 1 0',
    '(arrow) 37 1 0',
  ]);
});

test('what it does not read is refused with a code, not guessed', () => {
  for (const source of [
    'namespace N { export const a = 1; }',
    '@sealed class C {}',
    'const x = <T>y;',
    'const f = (a): (b: number) => number => (b) => b;',
    'const s = "unclosed;',
  ]) {
    assert.throws(
      () => scanFacts(source),
      (err: unknown) => err instanceof UnsupportedSyntax && err.code === 'ERR_UNSUPPORTED_SYNTAX',
      source,
    );
  }
});

test.run();
