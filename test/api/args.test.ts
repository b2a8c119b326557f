// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkArgs, signatureOf, type ArgSpecs } from '../../src/api/args.ts';
import { METHODS } from '../../src/api/methods.ts';
import { statusForCode } from '../../src/api/status.ts';
import { BlobmsgType, Status } from '../../src/ubus/index.ts';
import type { BlobmsgTable } from '../../src/ubus/codec/index.ts';

const specs: ArgSpecs = {
  mac: { kind: 'mac', required: true },
  amount: { kind: 'amount' },
  seconds: { kind: 'count' },
  plan: { kind: 'string', maxLength: 8 },
  cause: { kind: 'string', oneOf: ['admin', 'pc-logout'] },
  payment: { kind: 'table' },
};

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

test('MACs in any common notation normalize to lowercase colon form', () => {
  for (const mac of ['02-00-00-00-0C-01', '02:00:00:00:0c:01', '020000000c01', '0200.0000.0c01'.replaceAll('.', '')]) {
    assert.is(checkArgs(specs, { mac }).mac, '02:00:00:00:0c:01', mac);
  }
  for (const mac of ['02:00:00:00:0c', 'zz:00:00:00:0c:01', '02:00:00:00:0c:01:ff', 42 as never, '']) {
    assert.is(
      code(() => checkArgs(specs, { mac })),
      'ERR_INVALID_ARGUMENT',
      String(mac),
    );
  }
});

test(
  'amounts: decimal strings and non-negative integers become bigint; negatives, fractions, junk and huge values ' +
    'are refused',
  () => {
    assert.is(checkArgs(specs, { mac: '020000000c01', amount: '1500000' }).amount, 1500000n);
    assert.is(checkArgs(specs, { mac: '020000000c01', amount: 42 }).amount, 42n);
    assert.is(checkArgs(specs, { mac: '020000000c01', amount: 5n ** 40n }).amount, 5n ** 40n);
    for (const amount of [
      '-1',
      -1,
      '1.5',
      1.5,
      '1e6',
      '0x10',
      ' ',
      'NaN',
      '1'.repeat(50),
      true as never,
      [] as never,
      {} as never,
    ]) {
      assert.is(
        code(() => checkArgs(specs, { mac: '020000000c01', amount })),
        'ERR_INVALID_ARGUMENT',
        JSON.stringify(amount),
      );
    }
    assert.is(
      code(() => checkArgs(specs, { mac: '020000000c01', seconds: 2 ** 60 })),
      'ERR_INVALID_ARGUMENT',
      'counts stay exact',
    );
  },
);

test(
  'counts and amounts: surrounding whitespace and leading zeros are the same number (documented); a whole DOUBLE ' +
    'is its integer; fractions, exponents in strings and signs are refused',
  () => {
    // These used to pass undocumented. They name the same count a person meant, so they are kept
    // and documented in docs/ubus-api.md rather than refused; a DOUBLE 60.0 (json-c turns 60.0 and 1e3 into DOUBLE)
    // reaches checkArgs as the number 60.
    for (const seconds of [' 60 ', '60\n', '0060', 60, 60.0]) {
      assert.is(checkArgs(specs, { mac: '020000000c01', seconds }).seconds, 60n, JSON.stringify(seconds));
    }
    assert.is(checkArgs(specs, { mac: '020000000c01', seconds: 1e3 }).seconds, 1000n);
    for (const seconds of ['60.0', '1e3', '+60', '6 0', 60.5, -60, '']) {
      if (seconds === '') continue; // an empty string is "not given" (ubus CLI), checked by the required rule
      assert.is(
        code(() => checkArgs(specs, { mac: '020000000c01', seconds })),
        'ERR_INVALID_ARGUMENT',
        JSON.stringify(seconds),
      );
    }
  },
);

test('ERR_CONFIG_READ is a system error (the file could not be read), not the status kept for bugs', () => {
  assert.is(statusForCode('ERR_CONFIG_READ'), Status.SYSTEM_ERROR);
  assert.is.not(statusForCode('ERR_CONFIG_READ'), statusForCode('ERR_INTERNAL'));
});

test('unknown arguments (ubus_rpc_session) are ignored; strings are checked for length and allowed values', () => {
  const args = checkArgs(specs, { mac: '020000000c01', ubus_rpc_session: 'abc', plan: 'data', cause: 'admin' });
  assert.equal(Object.keys(args).sort(), ['cause', 'mac', 'plan']);
  assert.is(
    code(() => checkArgs(specs, { mac: '020000000c01', plan: 'x'.repeat(9) })),
    'ERR_INVALID_ARGUMENT',
  );
  assert.is(
    code(() => checkArgs(specs, { mac: '020000000c01', cause: 'time-limit' })),
    'ERR_INVALID_ARGUMENT',
  );
  assert.is(
    code(() => checkArgs(specs, { mac: '020000000c01', payment: 'cash' })),
    'ERR_INVALID_ARGUMENT',
  );
  assert.is(
    code(() => checkArgs(specs, {})),
    'ERR_INVALID_ARGUMENT',
  );
});

test('the signature announces the blobmsg type of each argument; admin methods are LuCI and roaming ones', () => {
  assert.equal(signatureOf(specs), {
    mac: BlobmsgType.STRING,
    amount: BlobmsgType.STRING,
    seconds: BlobmsgType.INT64,
    plan: BlobmsgType.STRING,
    cause: BlobmsgType.STRING,
    payment: BlobmsgType.TABLE,
  });
  const admin = Object.entries(METHODS)
    .filter(([, m]) => m.adminOnly)
    .map(([n]) => n)
    .sort();
  assert.equal(admin, [
    'cashu_payout',
    'change',
    'extend',
    'grant',
    'logout',
    'move',
    'reload',
    'remove_device',
    'terminate',
    'venue_answer',
    'venue_charge',
    'venue_claim',
    'venue_open',
    'venue_release',
    'voucher_create',
    'voucher_list',
    'voucher_revoke',
  ]);
});

test('a policy declared as const types what checkArgs returns (the handlers rely on it, no casts)', () => {
  const policy = {
    mac: { kind: 'mac', required: true },
    cause: { kind: 'string', oneOf: ['admin', 'pc-logout'] },
    seconds: { kind: 'count' },
    payment: { kind: 'table', required: true },
  } as const;
  const a = checkArgs(policy, { mac: '02-00-00-00-0C-01', cause: 'admin', payment: { method: 'cash' } });
  const mac: string = a.mac;
  const cause: 'admin' | 'pc-logout' | undefined = a.cause;
  const payment: BlobmsgTable = a.payment;
  // @ts-expect-error an optional argument may be absent
  const seconds: bigint = a.seconds;
  assert.equal(
    { mac, cause, payment, seconds },
    { mac: '02:00:00:00:0c:01', cause: 'admin', payment: { method: 'cash' }, seconds: undefined },
  );
  assert.not.ok('seconds' in a, 'an argument not given is absent, not undefined');
});

test('error codes map to the standard ubus statuses', () => {
  assert.is(statusForCode('ERR_INVALID_MAC'), Status.INVALID_ARGUMENT);
  assert.is(statusForCode('ERR_SESSION_NOT_FOUND'), Status.NOT_FOUND);
  assert.is(statusForCode('ERR_PAYMENT_METHOD_ADMIN_ONLY'), Status.PERMISSION_DENIED);
  assert.is(statusForCode('ERR_JOURNAL_WRITE'), Status.SYSTEM_ERROR);
  assert.is(statusForCode('ERR_NDSCTL_TIMEOUT'), Status.TIMEOUT);
  // upto refusals: the payment is not good for this router; its table unreadable is the system's.
  assert.is(statusForCode('ERR_UPTO_AUTHORIZATION_INVALID'), Status.PERMISSION_DENIED);
  assert.is(statusForCode('ERR_UPTO_PAYLOAD_INVALID'), Status.INVALID_ARGUMENT);
  assert.is(statusForCode('ERR_UPTO_STORE'), Status.SYSTEM_ERROR);
  // batch-settlement: a bad voucher is a refusal, a busy channel a "try again", a garbled payload the caller's.
  assert.is(statusForCode('ERR_BATCH_VOUCHER_INVALID'), Status.PERMISSION_DENIED);
  assert.is(statusForCode('ERR_BATCH_CUMULATIVE_MISMATCH'), Status.PERMISSION_DENIED);
  assert.is(statusForCode('ERR_BATCH_CHANNEL_BUSY'), Status.TIMEOUT);
  assert.is(statusForCode('ERR_BATCH_PAYLOAD_INVALID'), Status.INVALID_ARGUMENT);
  assert.is(statusForCode('ERR_BATCH_STORE'), Status.SYSTEM_ERROR);
  assert.is(statusForCode('ERR_INTERNAL'), Status.UNKNOWN_ERROR);
});

test.run();

test('every refusal a purchase can answer with has its own ubus status, not the one kept for bugs', () => {
  const purchaseCodes = [
    'ERR_TRIAL_USED',
    'ERR_TRIAL_LIMIT',
    'ERR_TRIAL_PLAN',
    'ERR_TRIAL_STORE',
    'ERR_VOUCHER_STORE',
    'ERR_PAYMENT_METHOD_UNAVAILABLE',
    'ERR_CASHU_MINT_NOT_ACCEPTED',
    'ERR_CASHU_UNIT',
    'ERR_CASHU_KEYSET_UNKNOWN',
    'ERR_CASHU_TOKEN_LOCKED',
    'ERR_CASHU_TOKEN_INVALID',
    'ERR_CASHU_TOKEN_SPENT',
    'ERR_CASHU_TOO_LARGE',
    'ERR_CASHU_UNDERPAID',
    'ERR_CASHU_PENDING',
    'ERR_CASHU_MINT_UNAVAILABLE',
    'ERR_CASHU_BALANCE_FULL',
    'ERR_CASHU_STORE_DAMAGED',
    'ERR_CASHU_PAYOUT_NO_ADDRESS',
    'ERR_CASHU_PAYOUT_LNURL',
  ] as const;
  for (const c of purchaseCodes) assert.is.not(statusForCode(c), Status.UNKNOWN_ERROR, c);
  assert.is(statusForCode('ERR_CASHU_TOKEN_SPENT'), Status.PERMISSION_DENIED);
  assert.is(statusForCode('ERR_CASHU_PENDING'), Status.TIMEOUT);
  assert.is(statusForCode('ERR_CASHU_STORE_DAMAGED'), Status.SYSTEM_ERROR);
});
