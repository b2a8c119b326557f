/**
 * `grant`: the admin gives time or data away. No money moves; the reference is a fresh id so each grant is distinct.
 */
import { randomBytes } from 'node:crypto';
import type { PaymentMethod, PaymentRef } from '../types.ts';

export function grantReference(asset: string, now: number, steps?: bigint): PaymentRef {
  const ref: PaymentRef = {
    method: 'grant',
    reference: `grant-${randomBytes(8).toString('hex')}`,
    amount: 0n,
    asset,
    at: now,
  };
  if (steps !== undefined) ref.steps = steps;
  return ref;
}

export const grantMethod: PaymentMethod = {
  name: 'grant',
  adminOnly: true,
  async authorize({ quote, now }) {
    return grantReference(quote.asset, now, quote.steps);
  },
};
