/**
 * The escrow side of a session bought with `x402-session`, read from the ledger (x402-session.ts writes it): the
 * credit rule that may hold a live session's gate for a receipt, and what ubus `session` and the `escrow-closed`
 * event show of the escrow session.
 */
import { creditState, meteredSteps, type CreditState, type EscrowLedger } from '../../escrow/index.ts';

export interface EscrowCredit {
  state: CreditState;
  metered: bigint;
  receipted: bigint;
}

export type EscrowView = Record<string, string | Record<string, string> | null>;

/**
 * The credit rule for the escrow session `reference`: metered usage in steps (a started step counts) may run ahead of
 * the buyer's latest receipt by at most escrow.credit_steps. null for a session this router does not know.
 */
export function creditOf(
  ledger: EscrowLedger | undefined,
  creditSteps: number,
  reference: string,
  live: { used: bigint; stepSize: bigint },
): EscrowCredit | null {
  const { used, stepSize } = live;
  const e = ledger?.get(reference);
  if (!e || e.closed) return null;
  const metered = meteredSteps(used, stepSize, e.maxUnits);
  const receipted = e.receipt?.cumulativeUnits ?? 0n;
  return { state: creditState(metered, receipted, BigInt(creditSteps)), metered, receipted };
}

/**
 * The escrow side of a session bought with this method (ubus `session`, the `escrow-closed` event): the buyer, the
 * units receipted and recorded on chain, and once closed the transaction and what the seller got and the buyer got
 * back. Null for a reference this router does not keep (another method, or closed long ago: KEEP_CLOSED).
 */
export function escrowView(
  ledger: EscrowLedger | undefined,
  creditSteps: number,
  reference: string,
  live?: { used: bigint; stepSize: bigint },
): EscrowView | null {
  const e = ledger?.get(reference);
  if (!e) return null;
  // A live session's gate may be held for a receipt (the credit rule, from the ledger and the metered usage).
  const credit = live && !e.closed && e.endedAt === undefined ? creditOf(ledger, creditSteps, reference, live) : null;
  return {
    escrow_session: e.sessionId,
    buyer: e.buyer,
    max_units: e.maxUnits.toString(),
    receipt_units: (e.receipt?.cumulativeUnits ?? 0n).toString(),
    consumed_units: (e.consumedUnits ?? 0n).toString(),
    state: e.closed ? 'closed' : e.endedAt !== undefined ? 'closing' : (credit?.state ?? 'open'),
    close: e.closed
      ? {
          transaction: e.closed.transaction,
          seller_amount: e.closed.sellerAmount,
          buyer_refund: e.closed.buyerRefund,
          ...(e.closed.units !== undefined && { units: e.closed.units }),
        }
      : null,
  };
}
