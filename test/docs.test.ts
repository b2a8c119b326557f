/** The docs stay true to the code: every error code raised is documented, every ubus method has its section. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { METHODS } from '../src/api/index.ts';
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
  assert.equal(named.filter((c) => !isErrorCode(c)), [], 'codes not in ERROR_CODES');
});

test.run();
