/**
 * The demo's payment method: accepts the quoted price as paid, with the caller's reference (replays are refused by the
 * sessions' payment keys like any method's). It exists only inside `sluice demo`: the daemon's production wiring
 * registers the built-in methods alone, so no config or flag can enable free purchases on a router.
 */
import { randomBytes } from 'node:crypto';
import type { PaymentMethod } from '../payments/index.ts';

export const demoPaymentMethod: PaymentMethod = {
  name: 'demo',
  adminOnly: false,
  async authorize({ quote, request, now }) {
    const given = request.payment.reference;
    const reference = typeof given === 'string' && given !== '' ? given : `demo-${randomBytes(6).toString('hex')}`;
    return { method: 'demo', reference, amount: quote.price, asset: quote.asset, at: now };
  },
};
