/**
 * The x402 method's answer to "did the money of this unanswered settle reach pay_to?". Only a proof grants:
 *  - with x402.rpc_url, the chain: AuthorizationUsed followed by Transfer(from, pay_to, value) (src/x402/
 *    authorization-fate.ts). A used nonce alone is not payment: cancelAuthorization uses it too, without a transfer;
 *  - the facilitator answering a settle (the first or a repeated one) with success and a transaction.
 * A repeated settle that the facilitator refuses says nothing about the first: the money may have moved with it
 * (x402's facilitators answer "nonce already used" then), or the buyer may have canceled. With a chain to ask, it
 * asks again later; without one, the purchase is `unconfirmed` and waits for rpc_url. Also here: what the customer
 * who sends the same payload again is told about each outcome.
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import {
  isNonceUsedReason,
  authorizationFate,
  type AuthorizationFate,
  type ChainReader,
  type FacilitatorClient,
  type PurchaseRecord,
  type SearchWindow,
} from '../x402/index.ts';

/** Chain time may trail the router's clock: an unused authorization is only dropped this long after validBefore. */
export const EXPIRY_MARGIN_SECONDS = 60n;
/** sluice's first /settle was sent at `record.at`; the router's and the chain's clocks may differ by this much. */
export const CLOCK_MARGIN_SECONDS = 600n;

export type PendingOutcome =
  | { kind: 'settled'; transaction?: string }
  /**
   * It can never move money to pay_to: the authorization expired unused, or the facilitator refused it while unused.
   */
  | { kind: 'failed'; reason: string }
  /** Its nonce was spent on chain without paying pay_to. */
  | { kind: 'void'; how: 'canceled' | 'spent-elsewhere'; transaction: string }
  /** Undecided; asked again on the resolver's next round. */
  | { kind: 'pending'; reason: string }
  /** Undecided, and asking again the same way will not decide it. */
  | { kind: 'unconfirmed'; reason: string };

export interface ResolveDeps {
  /** null without x402.rpc_url. */
  chain: ChainReader | null;
  facilitator: Pick<FacilitatorClient, 'settle'>;
  /** x402.pay_to, for records that do not name their payee. */
  payTo: string;
  nowSeconds: bigint;
  /** Search windows found by earlier rounds, by record key (filled here). */
  windows: Map<string, SearchWindow>;
  log?: Log | undefined;
}

/** The chain's view of the record's authorization; null when the chain did not answer. */
async function fateOf(
  r: PurchaseRecord,
  deps: ResolveDeps & { chain: ChainReader },
): Promise<AuthorizationFate | null> {
  const [from, nonce] = r.key.split(':') as [string, string];
  const authorization = (r.request?.paymentPayload.payload as { authorization?: { validAfter?: unknown } } | undefined)
    ?.authorization;
  const validAfter =
    typeof authorization?.validAfter === 'string' && /^[0-9]{1,78}$/.test(authorization.validAfter)
      ? BigInt(authorization.validAfter)
      : 0n;
  try {
    const { fate, window } = await authorizationFate(
      deps.chain,
      {
        token: r.asset,
        from,
        nonce,
        payTo: r.payTo ?? deps.payTo,
        value: BigInt(r.value),
        validAfter,
        validBefore: BigInt(r.validBefore),
        notBefore: BigInt(Math.floor(r.at / 1000)) - CLOCK_MARGIN_SECONDS,
      },
      deps.windows.get(r.key),
    );
    if (window) deps.windows.set(r.key, window);
    return fate;
  } catch (err) {
    const e = toSluiceError(err);
    deps.log?.warn('x402 chain lookup failed; the purchase stays pending', {
      key: r.key,
      code: e.code,
      reason: e.message,
    });
    return null;
  }
}

/** The outcome the chain's word decides by itself (paid, void, nonce used); null: unused or no answer. */
function usedOutcome(fate: AuthorizationFate | null): PendingOutcome | null {
  if (fate?.kind === 'paid') return { kind: 'settled', transaction: fate.transaction };
  if (fate?.kind === 'void') return { kind: 'void', how: fate.how, transaction: fate.transaction };
  if (fate?.kind === 'unknown') {
    return fate.final
      ? { kind: 'unconfirmed', reason: 'the nonce is used on chain but no transfer to pay_to was found for it' }
      : { kind: 'pending', reason: 'the nonce is used on chain; its transfer log is not found yet' };
  }
  return null;
}

/** Decides a `settling` (or `unconfirmed`) record: the chain first when there is one, then a repeated settle. */
export async function resolveSettle(r: PurchaseRecord, deps: ResolveDeps): Promise<PendingOutcome> {
  let fate: AuthorizationFate | null = null;
  if (deps.chain) {
    fate = await fateOf(r, { ...deps, chain: deps.chain });
    const decided = usedOutcome(fate);
    if (decided) return decided;
    if (fate?.kind === 'unused' && BigInt(r.validBefore) + EXPIRY_MARGIN_SECONDS <= deps.nowSeconds) {
      return { kind: 'failed', reason: 'the authorization expired unused' };
    }
  } else if (r.state === 'unconfirmed') {
    return { kind: 'unconfirmed', reason: 'no x402.rpc_url to look the transfer up' };
  }
  if (!r.request) return { kind: 'pending', reason: 'no request kept to settle again' };
  // Unused and still valid, the chain silent, or no chain: settling again is safe (a nonce moves money at most once).
  const again = await deps.facilitator.settle(r.request);
  if (again.status === 'settled') return { kind: 'settled', transaction: again.transaction };
  if (again.status === 'unknown') return { kind: 'pending', reason: again.message };
  if (deps.chain && fate?.kind === 'unused' && !isNonceUsedReason(again.reason)) {
    // "Unused" was read before this settle: another settle of the same authorization (the facilitator's own, still
    // out when sluice was killed) may have landed since, and this one been refused for that with any reason
    // ("transaction_failed"). Only the chain read after the refusal says whether no money moved.
    const after = await fateOf(r, { ...deps, chain: deps.chain });
    if (after?.kind === 'unused') return { kind: 'failed', reason: again.reason };
    return (
      usedOutcome(after) ?? { kind: 'pending', reason: `settle again refused (${again.reason}); asking the chain` }
    );
  }
  // The refusal of a repeated settle does not say what the first one did: the chain decides, when there is one.
  return deps.chain
    ? { kind: 'pending', reason: `settle again refused (${again.reason}); asking the chain` }
    : {
        kind: 'unconfirmed',
        reason: `settle again refused (${again.reason}) and no x402.rpc_url to look the transfer up`,
      };
}

/** What the customer is told about an undecided, void or still pending purchase. */
export function unconfirmedError(key: string, reason: string): SluiceError {
  return new SluiceError(
    'ERR_X402_SETTLEMENT_UNCONFIRMED',
    `the settlement of this payment cannot be confirmed (${reason}); no session is granted until it is (docs/x402.md)`,
    { details: { reference: key } },
  );
}

export function voidError(r: PurchaseRecord): SluiceError {
  const how = r.voided === 'spent-elsewhere' ? 'its nonce was used for another transfer' : 'it was canceled on chain';
  return new SluiceError(
    'ERR_X402_AUTHORIZATION_CANCELED',
    `this authorization never paid: ${how}; sign a new payment`,
    { details: { reference: r.key, ...(r.transaction && { transaction: r.transaction }) } },
  );
}

export function pendingError(key: string): SluiceError {
  return new SluiceError(
    'ERR_X402_SETTLEMENT_PENDING',
    'the facilitator did not confirm the settlement in time; sluice keeps checking and grants the session if ' +
      'the payment went through (retry the same request to ask again)',
    { details: { reference: key } },
  );
}
