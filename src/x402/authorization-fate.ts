/**
 * What became of an EIP-3009 authorization whose settle went unanswered: did its money reach the payee?
 *
 * "The nonce is used" (authorizationState = true) is not an answer: the buyer can burn the nonce without paying,
 * with cancelAuthorization (FiatTokenV2 emits AuthorizationCanceled) or with another authorization of the same nonce
 * to somewhere else. So a used nonce is looked up in the token's logs: FiatTokenV2's _transferWithAuthorization emits
 * AuthorizationUsed(from, nonce) and then, as the very next log, Transfer(from, to, value); only that pair, with our
 * payee and the signed value, is a payment. Anything less is `unknown` and never a grant.
 *
 * The search is bounded: the contract only runs an authorization while validAfter < block.timestamp < validBefore,
 * and sluice's own settle was sent at `notBefore` (less a clock margin), so the blocks searched are those between the
 * last block at or before `max(validAfter, notBefore)` and the last at or before `validBefore` (or the head). Block
 * numbers are found from timestamps by galloping back from the head, so the cost grows with how far back, not with
 * the chain's length.
 */
import type { BlockHeader, ChainLog, ChainReader } from './chain.ts';
import { addressWord } from './chain.ts';

/** keccak256 of the event signatures (viem's toEventSelector; test/payments/x402-fate.test.ts pins them). */
// Transfer(address,address,uint256)
export const TRANSFER_TOPIC = '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
// AuthorizationUsed(address,bytes32)
export const AUTHORIZATION_USED_TOPIC = '0x98de503528ee59b575ef0c0a2576a82497bfc029a5685b209e9ec333479b10a5';
// AuthorizationCanceled(address,bytes32)
export const AUTHORIZATION_CANCELED_TOPIC = '0x1cdd46ff242716cdaa72d159d339a485b3438398348d68f09d7c8c0a59353d81';

/** Blocks per eth_getLogs call: within what public RPC providers allow (the filter is by indexed topics, so cheap). */
export const MAX_LOG_BLOCK_RANGE = 1000n;

export interface AuthorizationQuery {
  /** Token contract (lower case). */
  token: string;
  from: string;
  /** 32-byte hex. */
  nonce: string;
  payTo: string;
  value: bigint;
  /** Unix seconds. */
  validAfter: bigint;
  validBefore: bigint;
  /** Unix seconds before which sluice's settle cannot have landed (its first /settle, less a clock margin). */
  notBefore: bigint;
}

/** The blocks to search; `to` is only kept once it can no longer grow (the head has passed validBefore). */
export interface SearchWindow {
  from: bigint;
  to?: bigint;
}

export type AuthorizationFate =
  /** The nonce is unused: the authorization can still move money (until validBefore). */
  | { kind: 'unused' }
  /** AuthorizationUsed followed by Transfer(from, payTo, value): the money reached the payee. */
  | { kind: 'paid'; transaction: string }
  /** Canceled on chain, or used for a transfer that did not pay payTo the value: it never will. */
  | { kind: 'void'; how: 'canceled' | 'spent-elsewhere'; transaction: string }
  /**
   * Used, but no event found in the window (yet), or one this code cannot read: undecided, never a payment; `final`
   * when asking again will not change the answer (the whole window is behind the head).
   */
  | { kind: 'unknown'; final: boolean };

/** The number of the last block whose timestamp is ≤ `time` (0 when even the first is later). */
export async function blockAtOrBefore(
  chain: Pick<ChainReader, 'block'>,
  time: bigint,
  head: BlockHeader,
): Promise<bigint> {
  if (head.timestamp <= time) return head.number;
  // Gallop back from the head until a block at or before `time`, then bisect (timestamps never decrease).
  let hi = head.number;
  let step = 1n;
  let lo = hi;
  for (;;) {
    lo = hi > step ? hi - step : 0n;
    const t = (await chain.block(lo)).timestamp;
    if (t <= time) break;
    if (lo === 0n) return 0n;
    hi = lo;
    step *= 2n;
  }
  while (hi - lo > 1n) {
    const mid = (lo + hi) / 2n;
    if ((await chain.block(mid)).timestamp <= time) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Is `log` the token's Transfer(from, payTo, value)? */
export function isPaymentTransfer(
  log: ChainLog,
  q: Pick<AuthorizationQuery, 'token' | 'from' | 'payTo' | 'value'>,
): boolean {
  return (
    log.address === q.token.toLowerCase() &&
    log.topics.length === 3 &&
    log.topics[0] === TRANSFER_TOPIC &&
    log.topics[1] === addressWord(q.from) &&
    log.topics[2] === addressWord(q.payTo) &&
    /^0x[0-9a-f]{64}$/.test(log.data) &&
    BigInt(log.data) === q.value
  );
}

/**
 * The fate of the authorization (from, nonce) on `token`. Throws ERR_X402_RPC_UNAVAILABLE when the chain does not
 * answer. `window` is what an earlier call returned, to skip finding the blocks again.
 */
export async function authorizationFate(
  chain: ChainReader,
  q: AuthorizationQuery,
  window?: SearchWindow,
): Promise<{ fate: AuthorizationFate; window?: SearchWindow }> {
  const token = q.token.toLowerCase();
  const nonce = q.nonce.toLowerCase();
  if (!(await chain.authorizationState(token, q.from, nonce))) return { fate: { kind: 'unused' } };
  const head = await chain.block(null);
  const from =
    window?.from ?? (await blockAtOrBefore(chain, q.notBefore > q.validAfter ? q.notBefore : q.validAfter, head));
  const closed = head.timestamp >= q.validBefore;
  const to = window?.to ?? (closed ? await blockAtOrBefore(chain, q.validBefore, head) : head.number);
  const searched: SearchWindow = { from, ...(closed && { to }) };
  const authorizer = addressWord(q.from);
  for (let start = from; start <= to; start += MAX_LOG_BLOCK_RANGE) {
    const end = start + MAX_LOG_BLOCK_RANGE - 1n < to ? start + MAX_LOG_BLOCK_RANGE - 1n : to;
    const logs = (
      await chain.logs({
        address: token,
        topics: [[AUTHORIZATION_USED_TOPIC, AUTHORIZATION_CANCELED_TOPIC], authorizer, nonce],
        fromBlock: start,
        toBlock: end,
      })
    ).filter((l) => !l.removed && l.address === token && l.topics[1] === authorizer && l.topics[2] === nonce);
    // A nonce is spent once, so at most one of these is real; a canceled one never paid.
    const canceled = logs.find((l) => l.topics[0] === AUTHORIZATION_CANCELED_TOPIC);
    if (canceled)
      return { fate: { kind: 'void', how: 'canceled', transaction: canceled.transactionHash }, window: searched };
    const used = logs.find((l) => l.topics[0] === AUTHORIZATION_USED_TOPIC);
    if (used) {
      // The authorization's own transfer is the next log of the same transaction.
      const next = (
        await chain.logs({
          address: token,
          topics: [TRANSFER_TOPIC, authorizer],
          fromBlock: used.blockNumber,
          toBlock: used.blockNumber,
        })
      ).find((l) => !l.removed && l.transactionHash === used.transactionHash && l.logIndex === used.logIndex + 1n);
      if (next && isPaymentTransfer(next, q))
        return { fate: { kind: 'paid', transaction: used.transactionHash }, window: searched };
      if (next)
        return { fate: { kind: 'void', how: 'spent-elsewhere', transaction: used.transactionHash }, window: searched };
      // No transfer of `from` right after it: a token that orders its logs otherwise; undecided, so not a payment.
      return { fate: { kind: 'unknown', final: true }, window: searched };
    }
  }
  return { fate: { kind: 'unknown', final: closed }, window: searched };
}
