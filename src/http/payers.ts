/**
 * Who paid for a session, as wallet addresses: the identity a returning customer proves (restore.ts). Read from the
 * payments the session keeps (its first and most recent ones): an x402 `exact` payment's reference is
 * `from:nonce` (the EIP-3009 payer), a batch-settlement voucher's payer is its channel's. Vouchers, grants, trials and
 * escrow sessions name no wallet here.
 */
import type { BatchSettlementMethod } from '../payments/index.ts';
import type { Session } from '../sessions/index.ts';

const ADDRESS = /^0x[0-9a-f]{40}$/;

export function sessionPayers(session: Session, batch: Pick<BatchSettlementMethod, 'settlementOf'> | null): string[] {
  const payers = new Set<string>();
  for (const p of session.payments) {
    let payer: unknown;
    if (p.method === 'x402') payer = p.reference.split(':')[0]?.toLowerCase();
    else if (p.method === 'batch-settlement' && batch) payer = (batch.settlementOf(p.reference)?.payer as string | undefined)?.toLowerCase();
    if (typeof payer === 'string' && ADDRESS.test(payer)) payers.add(payer);
  }
  return [...payers];
}
