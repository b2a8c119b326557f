// tier: fast
// The gate's token book (portal/tokens.ts) and when the gates read the portal's status first (portal/call-costs.ts,
// status-tokens.ts): a token is only ever the one the portal last showed beside that MAC, and one token names one MAC.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isPortalToken, PortalTokens } from '../../src/portal/tokens.ts';
import { BURST_MIN, CallCosts, PROBE_AT } from '../../src/portal/call-costs.ts';
import { statusTokens } from '../../src/portal/status-tokens.ts';
import { ndsinfoVersion, statusIsSafe } from '../../src/portal/portal-version.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../fixtures/ndsctl/', import.meta.url));

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

test('a status goes first only when the durations seen say it and auths by token cost less than by MAC', () => {
  const costs = new CallCosts();
  assert.not.ok(costs.statusFirst(1, 32), 'nothing timed yet, one gate: by MAC (and timed)');
  assert.ok(costs.statusFirst(BURST_MIN, 32), 'nothing timed yet, a burst: a status tried');
  costs.byMac(108);
  assert.not.ok(costs.statusFirst(1, PROBE_AT - 1), 'no status timed, few listed: by MAC');
  assert.ok(costs.statusFirst(1, PROBE_AT), 'no status timed, enough listed: one status to time it');
  // openNDS 9.10 with 36 listed: a status ≈ 30 ms, an auth by MAC ≈ 108 ms, by token ≈ 25 ms.
  costs.status(30, 36);
  // Worth it when it saves a fifth or more: status + k × token < 0.8 × k × MAC.
  assert.ok(costs.statusFirst(1, 36), 'untimed token calls guessed at half a MAC call: 30 + 54 < 0.8 × 108');
  costs.byToken(25);
  assert.ok(costs.statusFirst(1, 36), '30 + 25 < 86');
  // openNDS 10.3.1 with 36 listed: a status ≈ 600 ms (its gateway check), an auth by MAC ≈ 200 ms, by token ≈ 60.
  const ten = new CallCosts();
  ten.byMac(200);
  ten.byToken(60);
  ten.status(600, 36);
  assert.not.ok(ten.statusFirst(1, 36), '600 + 60 > 0.8 × 200');
  assert.not.ok(ten.statusFirst(4, 36), '600 + 240 > 640');
  assert.ok(ten.statusFirst(6, 36), '600 + 360 < 960');
  // A status of fewer clients than the list holds now scales up (18 → 36 listed: 1,200 ms).
  ten.status(600, 18);
  assert.not.ok(ten.statusFirst(6, 36), '1,200 + 360 > 960');
});

test("statusTokens: each client's MAC and token from openNDS's `ndsctl status` (real 10.3.1 and 9.10 lines)", () => {
  const text =
    '====\nClient authentications since start: 0\nCurrent clients: 2\n\nClient 0\n  Client Type: cpd_can\n' +
    '  IP: 10.77.0.101 MAC: 02:00:00:00:0c:01\n  Last Activity: Fri Nov 27 05:59:32 2026 (13s ago)\n' +
    '  Session Start: -\n  Session End:   -\n  Token: 7cc4c541\n  State: Preauthenticated\n' +
    '  Download Rate Limit Threshold: not set\n  Upload Rate Limit Threshold: not set\n\nClient 1\n' +
    '  Client Type: cpd_can\n  IP: 10.77.0.102 MAC: 02:00:00:00:0C:02\n  Session Start: -\n  Session End:   -\n' +
    '  Token: 97f5cb89\n  State: Preauthenticated\n\nClient 2\n  IP: 10.77.0.103 MAC: 02:00:00:00:0c:03\n' +
    '  Token: none\n\nClient 3\n  Token: 0a0a0a0a\n====\nTrusted MAC addresses: none\n';
  assert.equal(statusTokens(text), ['02:00:00:00:0c:01', '7cc4c541', '02:00:00:00:0c:02', '97f5cb89']);
  assert.equal(statusTokens(readFileSync(join(FIXTURES, 'opennds-9.10-status.txt'), 'utf8')), []);
});

test("openNDS's version from its ndsinfo (real 9.10 lines): `status` only of 10 and later", () => {
  const info = 'tmpfsmountpoint="/tmp"\ngatewayaddress="10.77.0.1"\ngatewayfqdn="disable"\nversion=9.10.0\n';
  assert.is(ndsinfoVersion(info), '9.10.0');
  assert.is(ndsinfoVersion(info.replace('9.10.0', '10.3.1')), '10.3.1');
  assert.is(ndsinfoVersion('gatewayfqdn="disable"\n'), undefined);
  assert.not.ok(statusIsSafe('9.10.0'));
  assert.ok(statusIsSafe('10.3.1'));
  assert.not.ok(statusIsSafe(undefined));
});

test.run();
