// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { VERSION } from '../../src/version.ts';

test('src/version.ts says the version package.json says', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.is(VERSION, pkg.version);
});

test.run();
