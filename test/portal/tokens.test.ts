// tier: fast
// The gate's token book (portal/tokens.ts) and when a burst of gates lists first (portal/call-costs.ts): a token is
// only ever the one the portal last showed beside that MAC, and one token names one MAC.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isPortalToken, PortalTokens } from '../../src/portal/tokens.ts';
import { CallCosts } from '../../src/portal/call-costs.ts';

const A = '02:00:00:00:0d:01';
const B = '02:00:00:00:0d:02';
const C = '02:00:00:00:0d:03';

test("only openNDS's token form is kept: 8 lowercase hex characters", () => {
  for (const t of ['0a1b2c3d', 'deadbeef', '00000000']) assert.ok(isPortalToken(t), t);
  for (const t of ['', 'null', 'none', 'DEADBEEF', '0a1b2c3', '0a1b2c3d4', '10.0.0.22', A, 'g0000000', null, 7])
    assert.not.ok(isPortalToken(t), String(t));
  const book = new PortalTokens();
  book.note(A, '0a1b2c3d');
  book.note(A, 'null');
  assert.is(book.of(A), undefined, 'a reading without a token forgets the one before');
});

test('one token names one MAC: a token seen beside another MAC drops the older pairing', () => {
  const book = new PortalTokens();
  book.note(A, '0a1b2c3d');
  book.note(B, '0a1b2c3d');
  assert.is(book.of(A), undefined);
  assert.is(book.of(B), '0a1b2c3d');
  // A's own new token later does not bring the old pairing back, and forgetting A leaves B's alone.
  book.note(A, '11111111');
  book.forget(A);
  assert.is(book.of(B), '0a1b2c3d');
  assert.is(book.size, 1);
});

test('a listing replaces the book: a MAC it does not list has no token any more', () => {
  const book = new PortalTokens();
  book.note(A, '0a1b2c3d');
  book.note(B, '22222222');
  book.noteListing([B, '33333333', 'not-a-mac', '44444444', C.toUpperCase(), '55555555', A.slice(0, 5), 'x']);
  assert.is(book.of(A), undefined, 'not listed: its token went with it');
  assert.is(book.of(B), '33333333', 'listed with a new token (deauthed and re-listed)');
  assert.is(book.of(C), '55555555', 'MACs in any case are the canonical one');
  assert.is(book.size, 2);
});

test('bounded: the oldest pairing goes first', () => {
  const book = new PortalTokens(2);
  book.note(A, '00000001');
  book.note(B, '00000002');
  book.note(C, '00000003');
  assert.is(book.of(A), undefined);
  assert.is(book.of(C), '00000003');
  assert.is(book.size, 2);
});

test('a burst lists first only when the durations seen say one listing and auths by token cost less', () => {
  const costs = new CallCosts();
  assert.not.ok(costs.listFirst(32, 32), 'nothing timed yet: by MAC');
  costs.byMac(108);
  assert.not.ok(costs.listFirst(32, 32), 'no listing timed yet');
  // openNDS 9.10 with 32 listed: a listing ≈ 715 ms, an auth by MAC ≈ 108 ms, by token ≈ 29 ms.
  costs.listing(715, 32);
  // Worth it when it saves a fifth or more: listing + k × token < 0.8 × k × MAC.
  assert.ok(costs.listFirst(32, 32), 'untimed token calls guessed at half a MAC call: 715 + 32 × 54 < 0.8 × 32 × 108');
  assert.not.ok(costs.listFirst(3, 32), 'never for fewer than BURST_MIN');
  costs.byToken(29);
  assert.not.ok(costs.listFirst(12, 32), '715 + 12 × 29 > 0.8 × 12 × 108');
  assert.ok(costs.listFirst(13, 32), '715 + 13 × 29 < 0.8 × 13 × 108');
  // The last listing had fewer clients than the list holds now: its cost scales up (16 → 32 listed: 1,430 ms).
  costs.listing(715, 16);
  assert.not.ok(costs.listFirst(13, 32), '1,430 + 13 × 29 > 0.8 × 13 × 108');
  assert.ok(costs.listFirst(26, 32), '1,430 + 26 × 29 < 0.8 × 26 × 108');
  // A listing that took seconds (clients gone from the neighbour table: 1 s each) is not worth it.
  costs.listing(4000, 32);
  assert.not.ok(costs.listFirst(32, 32));
});

test.run();
