// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { normalizeMac, tryNormalizeMac } from '../src/mac.ts';
import { isSluiceError } from '../src/errors.ts';

test('accepted spellings all give lowercase colon form', () => {
  for (const input of [
    'aa:bb:cc:dd:ee:0f',
    'AA:BB:CC:DD:EE:0F',
    'aa-bb-cc-dd-ee-0f',
    'AA-BB-CC-DD-EE-0F',
    'aabb.ccdd.ee0f',
    'AABB.CCDD.EE0F',
    'aabbccddee0f',
    'AaBbCcDdEe0F',
  ]) {
    assert.is(normalizeMac(input), 'aa:bb:cc:dd:ee:0f', input);
  }
});

test('syntax only: multicast, broadcast and zero addresses pass', () => {
  assert.is(normalizeMac('01:00:5E:00:00:01'), '01:00:5e:00:00:01');
  assert.is(normalizeMac('ff:ff:ff:ff:ff:ff'), 'ff:ff:ff:ff:ff:ff');
  assert.is(normalizeMac('000000000000'), '00:00:00:00:00:00');
});

test('everything else is ERR_INVALID_MAC', () => {
  const bad: unknown[] = [
    '',
    'aa:bb:cc:dd:ee',
    'aa:bb:cc:dd:ee:ff:00',
    'aa:bb-cc:dd:ee:ff',
    'a:bb:cc:dd:ee:ff',
    'gg:bb:cc:dd:ee:ff',
    ' aa:bb:cc:dd:ee:ff',
    'aa:bb:cc:dd:ee:ff\n',
    'aabb.ccdd.eeff.0011',
    'aabbccddeef',
    'aa bb cc dd ee ff',
    '10.0.0.1',
    'aa:bb:cc:dd:ee:ff,1',
    42,
    null,
    undefined,
    {},
  ];
  for (const input of bad) {
    try {
      normalizeMac(input as string);
      assert.unreachable(`accepted ${JSON.stringify(input)}`);
    } catch (err) {
      assert.ok(isSluiceError(err, 'ERR_INVALID_MAC'), `wrong error for ${JSON.stringify(input)}: ${String(err)}`);
    }
    assert.is(tryNormalizeMac(input as string), null);
  }
});

test.run();
