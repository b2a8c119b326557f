// tier: fast
/**
 * The docs stay true to the code: every error code raised is documented, every ubus method has its section, and every
 * doc a page or a source comment points to exists.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { METHODS } from '../src/api/methods.ts';
import { isErrorCode } from '../src/errors.ts';

const root = new URL('..', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}

test('docs/errors.md lists every error code the code raises', () => {
  const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
  const codes = new Set<string>();
  for (const file of [...sources(join(root, 'src')), ...sources(join(root, 'workers'))]) {
    for (const m of readFileSync(file, 'utf8').matchAll(/'(ERR_[A-Z0-9_]*[A-Z0-9])'/g)) codes.add(m[1]!);
  }
  assert.ok(codes.size > 30, `found ${codes.size} codes`);
  const missing = [...codes].filter((c) => !doc.includes(`\`${c}\``));
  assert.equal(missing, [], `undocumented codes: ${missing.join(', ')}`);
});

test('docs/ubus-api.md documents every method of the sluice object', () => {
  const doc = readFileSync(join(root, 'docs/ubus-api.md'), 'utf8');
  for (const name of Object.keys(METHODS)) assert.match(doc, new RegExp(`^### ${name}\\b`, 'm'), `method ${name}`);
});

test('docs/ubus-api.md names only codes sluice has', () => {
  const doc = readFileSync(join(root, 'docs/ubus-api.md'), 'utf8');
  const named = [...doc.matchAll(/\b(ERR_[A-Z0-9_]*[A-Z0-9])\b/g)].map((m) => m[1]!);
  assert.ok(named.length > 10, `found ${named.length} codes`);
  assert.equal(
    named.filter((c) => !isErrorCode(c)),
    [],
    'codes not in ERROR_CODES',
  );
});

/** README.md and docs/*.md: the pages whose links a reader follows. */
const pages = (): string[] => [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((n) => n.endsWith('.md'))
    .map((n) => `docs/${n}`),
];

test('every relative link in README.md and docs/*.md leads to a file that exists', () => {
  const broken: string[] = [];
  for (const page of pages()) {
    const text = readFileSync(join(root, page), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!.split('#')[0]!;
      if (target === '' || /^[a-z]+:/i.test(target)) continue;
      if (!existsSync(join(root, dirname(page), target))) broken.push(`${page} → ${m[1]}`);
    }
  }
  assert.equal(broken, []);
});

test('every docs/<name>.md named in README, docs or a source comment exists', () => {
  const texts = [...pages(), ...sources(join(root, 'src')).map((p) => p.slice(root.length))];
  const missing = new Set<string>();
  for (const file of texts) {
    const text = readFileSync(join(root, file), 'utf8');
    // "docs/x.md" anywhere, and "docs: x.md" as src/portal/types.ts writes it.
    for (const m of text.matchAll(/\bdocs(?:\/|: )([a-z0-9-]+\.md)\b/g)) {
      if (!existsSync(join(root, 'docs', m[1]!))) missing.add(`${file}: docs/${m[1]}`);
    }
  }
  assert.equal([...missing], []);
});

test('docs/architecture.md is one page: at most 150 lines', () => {
  const lines = readFileSync(join(root, 'docs/architecture.md'), 'utf8').trimEnd().split('\n').length;
  assert.ok(lines <= 150, `docs/architecture.md has ${lines} lines: the map is one page, details go to the topic docs`);
});

test('docs/architecture.md names every folder of src/, and only folders that exist', () => {
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const named = new Set([...doc.matchAll(/\bsrc\/([a-z][a-z0-9-]*)\//g)].map((m) => m[1]!));
  const folders = readdirSync(join(root, 'src')).filter((n) => statSync(join(root, 'src', n)).isDirectory());
  assert.equal(
    [...named].filter((n) => !folders.includes(n)),
    [],
    'folders the page names that src/ does not have',
  );
  assert.equal(
    folders.filter((n) => !named.has(n)),
    [],
    'folders of src/ the page does not name as src/<folder>/',
  );
});

/**
 * The paths the page names in backticks (`gate/gatekeeper.ts`, `payments/cashu/nostr/`, `test/storage/`), read from
 * the repository's root or from src/; a placeholder (`<method>`), what the build writes (`*.mjs`, `*.js`) and a
 * folder's `index.ts` in general are not paths of the tree.
 */
function pathsNamed(doc: string): string[] {
  return [...doc.matchAll(/`([a-z0-9_.-]+(?:\/[a-z0-9_.-]+)*\/?)`/g)]
    .map((m) => m[1]!)
    .filter((p) => (p.includes('/') || p.endsWith('.ts')) && !/\.(m?js)$/.test(p) && p !== 'index.ts');
}

test('every path docs/architecture.md names exists, and it names every top-level file of src/', () => {
  assert.equal(
    pathsNamed('`gate/gatekeeper.ts` `src/<folder>/` `cashu.mjs` `test/storage/` `ndsctl json` `index.ts` `log.ts`'),
    ['gate/gatekeeper.ts', 'test/storage/', 'log.ts'],
  );
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  assert.equal(
    pathsNamed(doc).filter((p) => !existsSync(join(root, p)) && !existsSync(join(root, 'src', p))),
    [],
    'paths the page names that the tree does not have',
  );
  const named = new Set(pathsNamed(doc).map((p) => p.replace(/^src\//, '')));
  const files = readdirSync(join(root, 'src')).filter((n) => n.endsWith('.ts'));
  assert.equal(
    files.filter((n) => !named.has(n)),
    [],
    'top-level files of src/ the page does not name',
  );
});

test('docs/performance.md holds the current figures in at most 400 lines, each row with how to reproduce it', () => {
  const doc = readFileSync(join(root, 'docs/performance.md'), 'utf8');
  const lines = doc.split('\n').length;
  assert.ok(lines <= 400, `docs/performance.md has ${lines} lines: earlier runs belong to git, not the page`);
  const table = doc.slice(doc.indexOf('| figure |'), doc.indexOf('\n\n', doc.indexOf('| figure |')));
  const withoutHow = table
    .split('\n')
    .slice(2)
    .filter((row) => !/`[^`]+`/.test(row.split('|')[3] ?? ''));
  assert.equal(withoutHow, [], 'rows of the figures table without a command or test in its third column');
});

test("no issue number or 'left as found' in src/, workers/, bench/ or docs: history lives in git", () => {
  const history = /\bissues? #?\d+|\bleft as found\b/i;
  const files = [
    ...['src', 'workers', 'bench'].flatMap((d) => sources(join(root, d))),
    join(root, 'README.md'),
    ...readdirSync(join(root, 'docs'))
      .filter((n) => n.endsWith('.md'))
      .map((n) => join(root, 'docs', n)),
  ];
  const found = files.flatMap((path) =>
    linesMatching(path, history).map(([i, line]) => `${path.slice(root.length)}:${i + 1}: ${line.trim()}`),
  );
  assert.equal(found, []);
});

test('no issue number in the tests: a test says what must hold, not which report asked for it', () => {
  const found = sources(join(root, 'test')).flatMap((path) =>
    linesMatching(path, /\bissues? #?\d+/i).map(([i]) => `${path.slice(root.length)}:${i + 1}`),
  );
  assert.equal(found, []);
});

/**
 * The lines of a file that `pattern` (one that never spans a line end) matches, with their index: the whole text is
 * searched first, and only a file it matches is split into lines, where splitting every file cost most of the scan.
 */
function linesMatching(path: string, pattern: RegExp): Array<[number, string]> {
  const text = readFileSync(path, 'utf8');
  if (!pattern.test(text)) return [];
  return text.split('\n').flatMap((line, i): Array<[number, string]> => (pattern.test(line) ? [[i, line]] : []));
}

test.run();
