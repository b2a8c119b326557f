// tier: fast
/**
 * A payment method's ubus methods come from its plugin (payments/plugins.ts's list), not from api/: the escrow
 * plugin brings `receipt`, batch-settlement `batch_channel` and `batch_refund`, printed vouchers `voucher_create`,
 * `voucher_list` and `voucher_revoke` (admin), Cashu `cashu_balance` and `cashu_payout`; each is on the `sluice` object
 * whether or not its method runs, its handler is handed its own method's face (null: not running, and it answers so),
 * and a session's `session` reply carries what the running methods add to it (escrow's `escrow`).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { invokeMethod, sluiceObject } from '../../src/api/object.ts';
import { METHODS } from '../../src/api/methods.ts';
import { decodeBlobmsgTable, encodeBlobmsgTable } from '../../src/ubus/codec/index.ts';
import type { SluiceBackend } from '../../src/api/backend.ts';
import { REGISTERED, type UbusFace } from '../../src/payments/index.ts';
import type { Session } from '../../src/sessions/index.ts';

const MAC = '02:00:00:00:0d:01';
const live: Session = {
  id: 'bbbbbbbbbbbbbbbb',
  mac: MAC,
  ip: '10.77.0.102',
  user: null,
  plan: 'p',
  metric: 'seconds',
  allotment: 600n,
  used: 0,
  bytes: 0,
  createdAt: 1_000,
  startedAt: 1_000,
  expiresAt: 601_000,
  endedAt: null,
  state: 'ACTIVE',
  endCause: null,
  payments: [],
};

/** A backend whose payment faces are `faces`, by plugin name (absent: that method does not run). */
function backend(faces: Record<string, UbusFace>, fields: Record<string, unknown> = {}) {
  const asked: string[] = [];
  const b = {
    now: () => 2_000,
    session: (q: { mac?: string; id?: string }) => (q.mac === MAC || q.id === live.id ? live : undefined),
    paymentFace: (name: string) => {
      asked.push(name);
      return faces[name] ?? null;
    },
    sessionFields: () => fields,
  } as unknown as SluiceBackend;
  return { b, asked };
}

/** The code and message a call failed with. */
async function failure(call: Promise<unknown>): Promise<[string | undefined, string]> {
  try {
    await call;
  } catch (e) {
    return [(e as { code?: string }).code, (e as Error).message];
  }
  throw new Error('the call did not fail');
}

const sessionOf = (data: unknown): Record<string, unknown> => (data as { session: Record<string, unknown> }).session;

const pluginOf = (method: string): string => REGISTERED.find((r) => r.ubusMethods[method])!.plugin.name;

test(
  "the payment methods' ubus methods are the plugins', on the object in the list's order after sessions, with " +
    'their policies',
  () => {
    const brought = REGISTERED.flatMap((r) => Object.keys(r.ubusMethods));
    assert.equal(brought, [
      'receipt',
      'batch_channel',
      'batch_refund',
      'voucher_create',
      'voucher_list',
      'voucher_revoke',
      'cashu_balance',
      'cashu_payout',
    ]);
    const names = Object.keys(METHODS);
    assert.equal(names.slice(names.indexOf('sessions') + 1, names.indexOf('sessions') + 1 + brought.length), brought);
    for (const r of REGISTERED) {
      for (const [name, m] of Object.entries(r.ubusMethods)) {
        assert.is(METHODS[name]!.args, m.args, name);
        assert.is(METHODS[name]!.adminOnly, m.adminOnly, name);
      }
    }
    // Printed vouchers' batches are the admin's (the write ACL), never the portal's.
    for (const n of ['voucher_create', 'voucher_list', 'voucher_revoke']) assert.ok(METHODS[n]!.adminOnly, n);
    const object = sluiceObject(backend({}).b);
    assert.equal(object.methods.batch_channel!.policy, { channel: 3 }, 'the signature as before (a STRING)');
    assert.equal(object.methods.receipt!.policy, {
      mac: 3,
      session_id: 3,
      cumulative_units: 4,
      nonce: 4,
      signature: 3,
    });
  },
);

test("a method's reply carries its table encoded once: what ubus sends, the size checked on them", async () => {
  const reply = await invokeMethod(backend({}).b, 'session', { mac: MAC });
  assert.ok(reply.encoded !== undefined && reply.data !== undefined && !Array.isArray(reply.data));
  assert.equal(decodeBlobmsgTable(reply.encoded), decodeBlobmsgTable(encodeBlobmsgTable(reply.data)));
});

test('a method that does not run answers its ubus methods with the same errors as before', async () => {
  const { b, asked } = backend({});
  assert.equal(await failure(invokeMethod(b, 'batch_channel', { channel: '0x01' })), [
    'ERR_UNKNOWN_PAYMENT_METHOD',
    'batch-settlement is not enabled on this router',
  ]);
  assert.equal(await failure(invokeMethod(b, 'batch_refund', { signature: 'x' })), [
    'ERR_UNKNOWN_PAYMENT_METHOD',
    'batch-settlement is not enabled on this router',
  ]);
  assert.equal(await failure(invokeMethod(b, 'receipt', { mac: MAC, cumulative_units: 1, signature: '0x' })), [
    'ERR_RECEIPT_SESSION',
    'escrow sessions are not enabled',
  ]);
  assert.equal(await failure(invokeMethod(b, 'receipt', { cumulative_units: 1, signature: '0x' })), [
    'ERR_INVALID_ARGUMENT',
    'mac: mac or session_id is required',
  ]);
  assert.equal(asked, [pluginOf('batch_channel'), pluginOf('batch_refund'), pluginOf('receipt'), pluginOf('receipt')]);
});

test(
  "a running method's ubus methods reach its own face: " + 'receipt as strings, the channel and refund as tables',
  async () => {
    const receipts: Array<Record<string, unknown>> = [];
    const face: UbusFace = {
      receipt: async (args) => {
        receipts.push(args);
        return { sessionId: '0xab', cumulativeUnits: 7n, advanced: true };
      },
    };
    const batch = {
      channel: (id: unknown) => ({ channel_id: id, charged: 5n }),
      requestRefund: async (payload: unknown) => ({
        channel: { channel_id: '0x02', payload },
        settlement: { tx: '0xcd' },
      }),
    } as unknown as NonNullable<UbusFace['batch']>;
    const { b } = backend({ [pluginOf('receipt')]: face, [pluginOf('batch_channel')]: { batch } });
    const r = await invokeMethod(b, 'receipt', { mac: MAC, cumulative_units: 7, nonce: '3', signature: '0xsig' });
    assert.equal(r.data, { session_id: '0xab', cumulative_units: '7', advanced: true });
    assert.equal(receipts, [{ mac: MAC, cumulative_units: '7', nonce: '3', signature: '0xsig' }]);
    assert.equal((await invokeMethod(b, 'batch_channel', { channel: '0x02' })).data, {
      channel: { channel_id: '0x02', charged: 5n },
    });
    assert.equal((await invokeMethod(b, 'batch_refund', { signature: 'c2ln' })).data, {
      channel: { channel_id: '0x02', payload: 'c2ln' },
      refunded: true,
      settlement: { tx: '0xcd' },
    });
  },
);

test("session: the running methods' fields join the session (escrow's `escrow`); none, none added", async () => {
  const withEscrow = await invokeMethod(backend({}, { escrow: { deposit: '10' } }).b, 'session', { mac: MAC });
  assert.equal(sessionOf(withEscrow.data).escrow, { deposit: '10' });
  const without = await invokeMethod(backend({}).b, 'session', { mac: MAC });
  assert.not.ok('escrow' in sessionOf(without.data));
});

test.run();
