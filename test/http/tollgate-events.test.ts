// tier: fast
/**
 * The TollGate door's pure parts: the events as clients read them (every tag value a string, milliseconds for time
 * plans, six-element price_per_step per mint, the cumulative allotment) and the POST body sniffing (raw token under
 * any wrapping a client sends, the legacy kind 21000, refusals).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { advertisement, refusalOf, sessionEvent } from '../../src/payments/cashu/tollgate/events.ts';
import { parseTollgatePayment } from '../../src/payments/cashu/tollgate/payment.ts';
import { isSluiceError } from '../../src/errors.ts';

const SETTINGS = { pricePerStep: 21n, unit: 'sat' as const, minSteps: 1n };
const TOKEN = 'cashuBo2FteBxodHRwOi8vMTI3LjAuMC4xOjMzMzgvY2FzaHVhdWNzYXRhdIGiYWlIAJofKTJT5B5hcIGkYWEBYXN4QDdm';

test(
  'the 10021 of a time plan: milliseconds, step size ×1000, one six-element price_per_step per mint, tips; every ' +
    'value a string',
  () => {
    const e = advertisement(
      SETTINGS,
      { metric: 'seconds', stepSize: 60n },
      ['https://a.example', 'https://b.example'],
      1_764_000_000_123,
    );
    assert.is(e.kind, 10021);
    assert.is(e.created_at, 1_764_000_000);
    assert.equal(e.tags, [
      ['metric', 'milliseconds'],
      ['step_size', '60000'],
      ['price_per_step', 'cashu', '21', 'sat', 'https://a.example', '1'],
      ['price_per_step', 'cashu', '21', 'sat', 'https://b.example', '1'],
      ['tips', '1', '2'],
    ]);
    assert.ok(e.tags.every((t) => t.every((x) => typeof x === 'string')));
  },
);

test('the 10021 of a data plan counts bytes; with every mint down it still advertises metric and step size', () => {
  const e = advertisement(SETTINGS, { metric: 'bytes', stepSize: 1_048_576n }, [], 0);
  assert.equal(e.tags, [
    ['metric', 'bytes'],
    ['step_size', '1048576'],
    ['tips', '1', '2'],
  ]);
});

test(
  "the 1022: the session's whole allotment in ms, the MAC, the payer key or the MAC in p, start-time in unix " +
    'seconds',
  () => {
    const s = {
      mac: '02:00:00:00:39:01',
      metric: 'seconds' as const,
      allotment: 180n,
      startedAt: 1_764_000_005_900,
      createdAt: 1_764_000_005_000,
    };
    assert.equal(sessionEvent(s, null, 0).tags, [
      ['p', '02:00:00:00:39:01'],
      ['device-identifier', 'mac', '02:00:00:00:39:01'],
      ['allotment', '180000'],
      ['metric', 'milliseconds'],
      ['start-time', '1764000005'],
    ]);
    assert.equal(sessionEvent(s, 'ab'.repeat(32), 0).tags[0], ['p', 'ab'.repeat(32)]);
    assert.is(sessionEvent(s, null, 0).kind, 1022);
  },
);

test(
  'refusals: spent and replayed are payment-error-token-spent, another mint payment-error-mint-not-accepted, ' +
    'pending a timeout; unknown codes internal-error',
  () => {
    assert.equal(refusalOf('ERR_CASHU_TOKEN_SPENT'), {
      status: 402,
      level: 'error',
      code: 'payment-error-token-spent',
    });
    assert.equal(refusalOf('ERR_PAYMENT_REPLAYED'), { status: 402, level: 'error', code: 'payment-error-token-spent' });
    assert.equal(refusalOf('ERR_CASHU_MINT_NOT_ACCEPTED').code, 'payment-error-mint-not-accepted');
    assert.equal(refusalOf('ERR_CASHU_PENDING'), { status: 504, level: 'warning', code: 'payment-processing-timeout' });
    assert.equal(refusalOf('ERR_SOMETHING_ELSE'), { status: 500, level: 'error', code: 'internal-error' });
  },
);

test(
  'POST bodies: a raw token, with whitespace, a cashu: link, or in a form field, is the token; the device is ' +
    'never read from it',
  () => {
    for (const body of [
      TOKEN,
      `  ${TOKEN}\r\n`,
      `cashu:${TOKEN}`,
      `token=${encodeURIComponent(TOKEN)}`,
      `token=${TOKEN}&other=1`,
    ]) {
      assert.equal(parseTollgatePayment(Buffer.from(body)), { token: TOKEN, payer: null }, body);
    }
  },
);

test(
  "POST bodies: a kind 21000 gives its payment tag's token and its pubkey as the payer; its device-identifier is " +
    'ignored',
  () => {
    const event = {
      id: '0'.repeat(64),
      pubkey: 'cd'.repeat(32),
      created_at: 1,
      kind: 21000,
      sig: '0'.repeat(128),
      content: '',
      tags: [
        ['p', 'ef'.repeat(32)],
        ['device-identifier', 'mac', '02:00:00:00:00:99'],
        ['payment', TOKEN],
      ],
    };
    assert.equal(parseTollgatePayment(Buffer.from(JSON.stringify(event))), { token: TOKEN, payer: 'cd'.repeat(32) });
  },
);

test('POST bodies that carry no token are ERR_TOLLGATE_REQUEST, nothing taken', () => {
  const event = {
    id: '0'.repeat(64),
    pubkey: 'cd'.repeat(32),
    created_at: 1,
    kind: 1,
    sig: '0'.repeat(128),
    content: '',
    tags: [['payment', TOKEN]],
  };
  for (const body of [
    '',
    'hello',
    '{',
    JSON.stringify(event),
    JSON.stringify({ ...event, kind: 21000, tags: [] }),
    'cashuC1234',
    'a=b&c=d',
  ]) {
    try {
      parseTollgatePayment(Buffer.from(body));
      assert.unreachable(body);
    } catch (err) {
      assert.ok(isSluiceError(err, 'ERR_TOLLGATE_REQUEST'), `${body}: ${String(err)}`);
    }
  }
});

test.run();
