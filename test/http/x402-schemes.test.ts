// tier: fast
/** Pure: which scheme a PAYMENT-SIGNATURE names (routing on /buy), and the corrective extra of a batch refusal. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { schemeOfHeader } from '../../src/http/x402-schemes.ts';
import { correctiveExtra } from '../../src/payments/batch-settlement/lan-routes.ts';

const test = suite('x402 schemes on /buy');
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');

test('the scheme a payload names, base64 or plain JSON; none for anything else', () => {
  assert.is(schemeOfHeader(b64({ x402Version: 2, accepted: { scheme: 'batch-settlement' } })), 'batch-settlement');
  assert.is(schemeOfHeader(JSON.stringify({ x402Version: 2, accepted: { scheme: 'exact' } })), 'exact');
  for (const h of [
    '',
    'bm90IGpzb24=',
    b64(null),
    b64([]),
    b64({ accepted: 'x' }),
    b64({ accepted: { scheme: 7 } }),
    b64({ scheme: 'exact' }),
    b64({ accepted: { scheme: 'batch-settlement', pad: 'a'.repeat(20_000) } }),
  ]) {
    assert.is(schemeOfHeader(h), null, h.slice(0, 40));
  }
});

test('the corrective extra only when both states are there', () => {
  const channelState = { chargedCumulativeAmount: '5' };
  const voucherState = { signedMaxClaimable: '9', signature: '0x' };
  assert.equal(correctiveExtra({ reason: 'r', channelState, voucherState }), { channelState, voucherState });
  assert.is(correctiveExtra({ reason: 'r', channelState }), undefined);
  assert.is(correctiveExtra({ channelState: null, voucherState }), undefined);
  assert.is(correctiveExtra(undefined), undefined);
});

test.run();
