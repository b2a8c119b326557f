// tier: fast
// The tier declarations (test/helpers/prerequisites.mjs, docs/testing.md "Tiers and skips"): every test file has one,
// and every command a file may need is one .ci/run installs, since CI turns a missing need into a failure. A typo
// (`needs mosquito`) would otherwise skip the file everywhere and fail only in CI.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { declaration, testFiles } from './helpers/prerequisites.mjs';

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

test.run();
