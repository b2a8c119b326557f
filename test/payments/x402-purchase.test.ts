// tier: fast
/**
 * The one x402 purchase pipeline (src/payments/x402-purchase.ts) on a scheme of its own: the steps run in their order,
 * the check is made once for precheck and authorize, a payload is held by one purchase at a time (and let go whatever
 * the outcome), the replay rule refuses before anything is held, an unfinished earlier purchase is finished without a
 * second verify or record, and a refused verify writes nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SluiceError } from '../../src/errors.ts';
import { KeyHold, X402Purchase, type X402Steps } from '../../src/payments/x402-purchase.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import type { PaymentRef } from '../../src/sessions/index.ts';

interface Rig {
  purchase: X402Purchase<string, string, string>;
  steps: string[];
  /** Resolves the verify step in flight (the test holds it there). */
  verified: () => void;
  opts: { replayed?: boolean; earlier?: PaymentRef; refuse?: boolean; holdVerify?: boolean };
}

const ctx = (payload: string): PaymentContext => ({ request: { payment: { payload } } }) as unknown as PaymentContext;
const ref = (reference: string): PaymentRef => ({ method: 'm', reference, amount: 1n, asset: 'a', at: 0, steps: 1n });

function rig(): Rig {
  const steps: string[] = [];
  let verified = (): void => undefined;
  const r: Rig = { purchase: undefined as never, steps, verified: () => verified(), opts: {} };
  const scheme: X402Steps<string, string, string> = {
    check: async (c) => {
      steps.push('check');
      return String(c.request.payment?.payload);
    },
    holdKey: (p) => p,
    held: (p) => new SluiceError('ERR_PAYMENT_IN_PROGRESS', `${p} in flight`),
    look: (_c, p) => {
      steps.push('look');
      if (r.opts.replayed) throw new SluiceError('ERR_X402_NONCE_REPLAYED', `${p} used`);
    },
    earlier: async () => {
      steps.push('earlier');
      return r.opts.earlier;
    },
    verify: async (_c, p) => {
      steps.push('verify');
      if (r.opts.holdVerify) await new Promise<void>((resolve) => (verified = resolve));
      if (r.opts.refuse) throw new SluiceError('ERR_X402_VERIFY_REJECTED', 'no');
      return `${p}:ok`;
    },
    record: async (_c, _p, verdict) => {
      steps.push(`record ${verdict}`);
      return `${verdict}:on-flash`;
    },
    act: async (_c, p, held) => {
      steps.push(`act ${held}`);
      return ref(p);
    },
  };
  r.purchase = new X402Purchase(scheme, new KeyHold());
  return r;
}

test('the steps run in order, and the check is made once for precheck and authorize', async () => {
  const r = rig();
  const c = ctx('p1');
  assert.is(await r.purchase.checked(c), 'p1');
  assert.equal(await r.purchase.authorize(c), ref('p1'));
  assert.equal(r.steps, ['check', 'look', 'earlier', 'verify', 'record p1:ok', 'act p1:ok:on-flash']);
  assert.not.ok(r.purchase.hold.has('p1'));
});

test('a second purchase of a payload in flight is refused with the scheme code; the hold is let go after', async () => {
  const r = rig();
  r.opts.holdVerify = true;
  const first = r.purchase.authorize(ctx('p1'));
  while (!r.steps.includes('verify')) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(r.purchase.hold.has('p1'));
  const second = await r.purchase.authorize(ctx('p1')).catch((e: SluiceError) => e.code);
  assert.is(second, 'ERR_PAYMENT_IN_PROGRESS');
  r.verified();
  assert.equal(await first, ref('p1'));
  assert.not.ok(r.purchase.hold.has('p1'));
  r.opts.holdVerify = false;
  assert.equal(await r.purchase.authorize(ctx('p1')), ref('p1'));
});

test('the replay rule refuses before anything is held; a refused verify writes nothing and lets go', async () => {
  const r = rig();
  r.opts.replayed = true;
  assert.is(await r.purchase.authorize(ctx('p1')).catch((e: SluiceError) => e.code), 'ERR_X402_NONCE_REPLAYED');
  assert.equal(r.steps, ['check', 'look']);
  r.opts.replayed = false;
  r.opts.refuse = true;
  r.steps.length = 0;
  assert.is(await r.purchase.authorize(ctx('p2')).catch((e: SluiceError) => e.code), 'ERR_X402_VERIFY_REJECTED');
  assert.equal(r.steps, ['check', 'look', 'earlier', 'verify']);
  assert.not.ok(r.purchase.hold.has('p2'));
});

test('an unfinished earlier purchase is finished without a second verify, record or money step', async () => {
  const r = rig();
  r.opts.earlier = ref('p1-earlier');
  assert.equal(await r.purchase.authorize(ctx('p1')), ref('p1-earlier'));
  assert.equal(r.steps, ['check', 'look', 'earlier']);
  assert.not.ok(r.purchase.hold.has('p1'));
});

test.run();
