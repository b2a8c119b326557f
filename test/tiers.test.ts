// tier: fast
// The tier declarations (test/helpers/prerequisites.mjs, docs/testing.md "Tiers and skips"): every test file has one,
// and every command a file may need is one .ci/run installs, since CI turns a missing need into a failure. A typo
// (`needs mosquito`) would otherwise skip the file everywhere and fail only in CI.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { chooseFiles, declaration, testFiles } from './helpers/prerequisites.mjs';

const root = new URL('./', import.meta.url).pathname;
const ciRun = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8');

/** The Debian package .ci/run installs for each command a file may need; root is how CI runs. */
const PACKAGE_OF: Record<string, string | null> = {
  root: null,
  freeradius: 'freeradius',
  radclient: 'freeradius-utils',
  mosquitto: 'mosquitto',
  mosquitto_sub: 'mosquitto-clients',
  openssl: 'openssl',
  python3: 'python3-msgpack',
  shellcheck: 'shellcheck',
  initdb: 'postgresql-15',
  chromium: 'chromium',
  nft: 'nftables',
  ip: 'iproute2',
  dnsmasq: 'dnsmasq-base',
  sendmail: 'exim4-daemon-light',
  exim4: 'exim4-daemon-light',
};

test('the declaration: tier, then the needs; anything else says what is wrong', () => {
  assert.equal(declaration('// tier: fast\nimport x'), { tier: 'fast', needs: [] });
  assert.equal(declaration('// tier: peers; needs freeradius radclient\n'), {
    tier: 'peers',
    needs: ['freeradius', 'radclient'],
  });
  assert.ok('error' in declaration('import { test } from "uvu";\n// tier: fast\n'), 'first line only');
  assert.match((declaration('// tier: slow\n') as { error: string }).error, /unknown tier 'slow'/);
  assert.ok('error' in declaration('// tier:fast\n'));
});

test('every test file declares its tier on its first line', () => {
  const missing = testFiles(root)
    .filter((f) => 'error' in declaration(readFileSync(f, 'utf8')))
    .map((f) => relative(root, f));
  assert.equal(
    missing,
    [],
    `add \`// tier: <fast|daemon|chain|peers|lab>\` as the first line of ${missing.join(', ')}`,
  );
});

test('every need a file names is installed by .ci/run (so a skip in CI is rightly a failure)', () => {
  const named = new Map<string, string[]>();
  for (const f of testFiles(root)) {
    const text = readFileSync(f, 'utf8');
    const d = declaration(text);
    const needs = 'error' in d ? [] : [...d.needs];
    // testNeeding(test, ['shellcheck'], …) inside a file
    for (const m of text.matchAll(/testNeeding\(\s*\w+,\s*\[([^\]]*)\]/g))
      needs.push(...[...m[1]!.matchAll(/'([^']+)'/g)].map((x) => x[1]!));
    for (const n of needs) named.set(n, [...(named.get(n) ?? []), relative(root, f)]);
  }
  assert.ok(named.size > 0, 'some file names a need');
  for (const [need, files] of named) {
    assert.ok(
      need in PACKAGE_OF,
      `${need} (named by ${files.join(', ')}) is not a known need: add it with its Debian package`,
    );
    const pkg = PACKAGE_OF[need];
    if (pkg)
      assert.ok(
        new RegExp(`\\s${pkg}\\s`).test(ciRun),
        `.ci/run installs ${pkg} (for ${need}, named by ${files.join(', ')})`,
      );
  }
});

test("the runner's arguments: a part of a path under test/, or a path as a shell completes it; a miss is said", () => {
  const files = testFiles(root);
  const repo = join(root, '..');
  const chosen = (filters: string[], cwd = repo) =>
    chooseFiles(files, root, filters, cwd).chosen.map((f) => relative(root, f));
  const x402 = 'payments/x402-chain.test.ts';
  assert.equal(chosen(['payments/x402-chain']), [x402]);
  assert.equal(chosen(['test/payments/x402-chain.test.ts']), [x402]);
  assert.equal(chosen(['./test/payments/x402-chain.test.ts']), [x402]);
  assert.equal(chosen([`${root}payments/x402-chain.test.ts`]), [x402], 'an absolute path');
  assert.equal(chosen(['x402-chain.test.ts'], join(root, 'payments')), [x402], 'a path from inside test/');
  const portal = chosen(['test/portal']);
  assert.ok(portal.length > 1 && portal.every((f) => f.startsWith('portal/')), 'a folder: its files');
  assert.equal(chosen([]).length, files.length, 'no argument: every file');
  assert.equal(chooseFiles(files, root, ['test/payments/x402-chain.test.ts', 'no-such-test'], repo).unmatched, [
    'no-such-test',
  ]);
  assert.equal(chooseFiles(files, root, ['test/payments/no-such.test.ts'], repo).unmatched, [
    'test/payments/no-such.test.ts',
  ]);
});

test.run();
