/**
 * The one check of a purchase's `payment` table (ubus `purchase`, the LAN endpoint's voucher form) before it becomes
 * the merchant's typed PurchaseRequest: the merchant trusts these types, so a wrong one is refused here, never ignored
 * (an ignored idempotency key is a second charge on retry). What the key says (≤ 200 characters, not applied yet)
 * sessions.prepare checks.
 */
import { SluiceError } from '../errors.ts';
import type { PurchaseRequest } from '../merchant/index.ts';

export function paymentOf(
  table: Readonly<Record<string, unknown>>,
): Pick<PurchaseRequest, 'payment' | 'idempotencyKey'> {
  const { method, idempotency_key: key } = table;
  if (typeof method !== 'string')
    throw new SluiceError('ERR_UNKNOWN_PAYMENT_METHOD', 'payment.method must name a payment method');
  // null and '' are "not given", as for every ubus argument (the ubus CLI cannot send an absent field in a table).
  if (key !== undefined && key !== null && key !== '' && typeof key !== 'string') {
    throw new SluiceError('ERR_INVALID_ARGUMENT', 'idempotency_key must be a string', {
      details: { argument: 'idempotency_key' },
    });
  }
  return { payment: { ...table, method }, ...(typeof key === 'string' && key !== '' && { idempotencyKey: key }) };
}
