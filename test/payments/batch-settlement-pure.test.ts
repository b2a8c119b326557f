// tier: fast
/**
 * batch-settlement without a chain: bad input is a clear error, never a crash, and a facilitator that answers
 * garbage is "unavailable" (verify: nothing moved) or "unknown" (settle: asked again later), never a success.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SluiceError } from '../../src/errors.ts';
import { BatchFacilitatorClient, parseBatchPayment } from '../../src/x402/index.ts';
import { JsonPeer } from '../peers/json-peer.ts';

const test = suite('batch-settlement pure');
const A = (c: string) => `0x${c.repeat(40)}`;
const good = () => ({
  x402Version: 2,
  accepted: { scheme: 'batch-settlement', network: 'eip155:84532' },
  payload: {
    type: 'voucher',
    channelConfig: {
      payer: A('1'),
      payerAuthorizer: A('2'),
      receiver: A('3'),
      receiverAuthorizer: A('4'),
      token: A('5'),
      withdrawDelay: 900,
      salt: `0x${'0'.repeat(64)}`,
    },
    voucher: { channelId: `0x${'a'.repeat(64)}`, maxClaimableAmount: '100', signature: `0x${'1'.repeat(130)}` },
  },
});

function code(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    assert.instance(err, SluiceError);
    return (err as SluiceError).code;
  }
  return 'none';
}

test('a well-formed voucher payload parses (addresses lower-cased, amounts bigint); base64 JSON too', () => {
  const p = parseBatchPayment(good());
  assert.is(p.type, 'voucher');
  assert.is(p.voucher.maxClaimableAmount, 100n);
  assert.is(
    parseBatchPayment(Buffer.from(JSON.stringify(good())).toString('base64')).voucher.channelId,
    `0x${'a'.repeat(64)}`,
  );
});

test('bad input is ERR_BATCH_PAYLOAD_INVALID (or the scheme refused), never a crash', () => {
  const bad: Array<[string, (g: ReturnType<typeof good>) => unknown]> = [
    ['not an object', () => 42],
    ['garbage text', () => 'not json at all'],
    ['v1', (g) => ({ ...g, x402Version: 1 })],
    ['no payload', (g) => ({ ...g, payload: undefined })],
    ['refund type', (g) => ({ ...g, payload: { ...g.payload, type: 'refund' } })],
    [
      'short address',
      (g) => ({ ...g, payload: { ...g.payload, channelConfig: { ...g.payload.channelConfig, payer: '0x12' } } }),
    ],
    [
      'amount as number',
      (g) => ({ ...g, payload: { ...g.payload, voucher: { ...g.payload.voucher, maxClaimableAmount: 100 } } }),
    ],
    [
      'amount over uint128',
      (g) => ({
        ...g,
        payload: { ...g.payload, voucher: { ...g.payload.voucher, maxClaimableAmount: (1n << 128n).toString() } },
      }),
    ],
    [
      'negative delay',
      (g) => ({ ...g, payload: { ...g.payload, channelConfig: { ...g.payload.channelConfig, withdrawDelay: -1 } } }),
    ],
    [
      '64-byte signature',
      (g) => ({
        ...g,
        payload: { ...g.payload, voucher: { ...g.payload.voucher, signature: `0x${'1'.repeat(128)}` } },
      }),
    ],
    [
      'deposit without authorization',
      (g) => ({ ...g, payload: { ...g.payload, type: 'deposit', deposit: { amount: '5' } } }),
    ],
    [
      'zero deposit',
      (g) => ({ ...g, payload: { ...g.payload, type: 'deposit', deposit: { amount: '0', authorization: {} } } }),
    ],
    ['oversized', (g) => ({ ...g, junk: 'x'.repeat(9000) })],
  ];
  for (const [what, make] of bad)
    assert.is(
      code(() => parseBatchPayment(make(good()))),
      'ERR_BATCH_PAYLOAD_INVALID',
      what,
    );
  assert.is(
    code(() => parseBatchPayment({ ...good(), accepted: { scheme: 'exact', network: 'eip155:84532' } })),
    'ERR_X402_SCHEME_UNSUPPORTED',
  );
});

test('a refund payload parses only where refunds are taken; its amount is a positive decimal', () => {
  const refund = (extra: Record<string, unknown> = {}) => ({
    ...good(),
    payload: { ...good().payload, type: 'refund', ...extra },
  });
  assert.is(parseBatchPayment(refund(), ['refund']).type, 'refund');
  assert.is(parseBatchPayment(refund({ amount: '25' }), ['refund']).refundAmount, 25n);
  assert.is(
    code(() => parseBatchPayment(refund())),
    'ERR_BATCH_PAYLOAD_INVALID',
    'not on the purchase path',
  );
  assert.is(
    code(() => parseBatchPayment(good(), ['refund'])),
    'ERR_BATCH_PAYLOAD_INVALID',
    'a voucher is not a refund request',
  );
  for (const amount of ['0', '-1', 25, '1e3'])
    assert.is(
      code(() => parseBatchPayment(refund({ amount }), ['refund'])),
      'ERR_BATCH_PAYLOAD_INVALID',
      String(amount),
    );
});

/** A facilitator answering `answer` to anything, on loopback. */
let answer = { status: 200, body: '' };
let facilitator: JsonPeer | undefined;
test.before(async () => {
  facilitator = await JsonPeer.listen(() => answer);
});
test.after(async () => {
  await facilitator?.close();
});
function answering(status: number, body: string): { url: string; timeoutMs: number } {
  answer = { status, body };
  return { url: facilitator!.url, timeoutMs: 1000 };
}

test(
  'a facilitator answering garbage: verify unavailable, settle unknown; a valid verify without the snapshot is ' +
    'not trusted',
  async () => {
    const req = { paymentPayload: {}, paymentRequirements: {} };
    for (const [status, body] of [
      [200, 'not json'],
      [200, '[]'],
      [200, '{"isValid":"yes"}'],
      [502, '{}'],
      [200, '{"isValid":true}'],
      [200, '{"isValid":true,"extra":{"balance":"x","totalClaimed":"0","refundNonce":"0","withdrawRequestedAt":0}}'],
    ] as const) {
      const client = new BatchFacilitatorClient(answering(status, body));
      try {
        await client.verify(req);
        assert.unreachable(`verify accepted ${body}`);
      } catch (err) {
        assert.is((err as SluiceError).code, 'ERR_X402_FACILITATOR_UNAVAILABLE', body);
      }
    }
    for (const body of [
      'not json',
      '{"success":true}',
      '{"success":true,"transaction":"0x12"}',
      '{"success":"maybe"}',
    ]) {
      const client = new BatchFacilitatorClient(answering(200, body));
      assert.is((await client.settle(req)).status, 'unknown', body);
    }
    const refusing = new BatchFacilitatorClient(
      answering(200, '{"isValid":false,"invalidReason":"invalid_batch_settlement_evm_voucher_signature"}'),
    );
    assert.equal(await refusing.verify(req), {
      ok: false,
      reason: 'invalid_batch_settlement_evm_voucher_signature',
      message: 'invalid_batch_settlement_evm_voucher_signature',
    });
  },
);

test.run();
