// tier: peers; needs freeradius
// sluice's compiled-in RADIUS dictionary against the dictionary files FreeRADIUS installs, with
// test/fixtures/freeradius/dictionary for the ChilliSpot gigaword attributes Debian's file lacks: every attribute
// sluice sends or reads has FreeRADIUS's number.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ATTRIBUTES } from '../../../src/radius/dictionary.ts';

test('the compiled-in dictionary agrees with FreeRADIUS', () => {
  const files = [
    'dictionary.rfc2865',
    'dictionary.rfc2866',
    'dictionary.rfc2869',
    'dictionary.rfc3162',
    'dictionary.rfc3576',
    'dictionary.rfc5176',
    'dictionary.chillispot',
    'dictionary.mikrotik',
    'dictionary.wispr',
  ];
  const text =
    files.map((f) => readFileSync(`/usr/share/freeradius/${f}`, 'utf8')).join('\n') +
    readFileSync(new URL('../../fixtures/freeradius/dictionary', import.meta.url), 'utf8');
  const known = new Map<string, number>();
  for (const m of text.matchAll(/^ATTRIBUTE\s+(\S+)\s+(\d+)\s+\S+/gm)) known.set(m[1]!, Number(m[2]));
  for (const a of ATTRIBUTES) assert.is(known.get(a.name), a.type, a.name);
});

test.run();
