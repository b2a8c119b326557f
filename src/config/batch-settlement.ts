/**
 * The `batch_settlement` section: customers pay with x402's `batch-settlement` scheme (payment method
 * `batch-settlement`): one deposit into their own channel, a voucher per session, charged what the meter counted, the
 * rest refunded. Validated only when enabled, like every upstream section. docs/batch-settlement.md explains the flow.
 * The receiver authorizer is the facilitator's (it signs claims and refunds: sluice delegates; see the docs).
 */
import { MAX_WITHDRAW_DELAY, MIN_WITHDRAW_DELAY } from '../x402/index.ts';
import { chainOf, parseAddress, parseNetwork, readFacilitatorTimeout, readTokenDomain } from './evm.ts';
import type { SectionReader } from './reader.ts';
import { parseHttpUrl, parseInteger, parseSecondsToMs, type Parsed } from './values.ts';

export type BatchRefundPolicy = 'at-end' | 'idle' | 'on-request';

export interface BatchSettlementConfig {
  enabled: boolean;
  /** Base URL of the facilitator's /verify and /settle. */
  facilitatorUrl: string;
  /** CAIP-2; v1 names are accepted in UCI and stored in this form. */
  network: string;
  chainId: number;
  /** Lower-case: the channels' receiver (payTo), where settled money goes. */
  receiver: string;
  /** Lower-case: the channels' receiverAuthorizer (the facilitator's advertised one). */
  receiverAuthorizer: string;
  /** Seconds a customer's timed withdrawal waits; sluice claims well within it. */
  withdrawDelay: number;
  /** When the unused balance of a channel goes back. */
  refund: BatchRefundPolicy;
  refundIdleMs: number;
  /** Per facilitator request. */
  timeoutMs: number;
  /** EIP-712 domain of plan assets sluice's table does not know (the deposit's ERC-3009 signature). */
  tokenName: string;
  tokenVersion: string;
}

export const BATCH_SETTLEMENT_DEFAULTS = {
  network: 'eip155:8453',
  withdraw_delay: 86_400,
  refund: 'at-end',
  refund_idle: 600,
  timeout: 15,
  token_version: '2',
} as const;

const refund = (v: string): Parsed<BatchRefundPolicy> =>
  v === 'at-end' || v === 'idle' || v === 'on-request'
    ? { ok: true, value: v }
    : { ok: false, reason: 'must be at-end, idle or on-request' };

export function readBatchSettlementSection(r: SectionReader, enabled: boolean): BatchSettlementConfig {
  const d = BATCH_SETTLEMENT_DEFAULTS;
  const net = r.parsed('network', d.network, parseNetwork);
  return {
    enabled,
    facilitatorUrl: r.required('facilitator_url', '', parseHttpUrl),
    ...chainOf(net),
    receiver: r.required('receiver', '', parseAddress, 'is required: the address settled money goes to'),
    receiverAuthorizer: r.required(
      'receiver_authorizer',
      '',
      parseAddress,
      "is required: the facilitator's receiverAuthorizer (GET /supported)",
    ),
    withdrawDelay: r.parsed('withdraw_delay', d.withdraw_delay, (v) =>
      parseInteger(v, MIN_WITHDRAW_DELAY, MAX_WITHDRAW_DELAY),
    ),
    refund: r.parsed('refund', d.refund, refund),
    refundIdleMs: r.parsed('refund_idle', d.refund_idle * 1000, (v) => parseSecondsToMs(v, 0, MAX_WITHDRAW_DELAY)),
    timeoutMs: readFacilitatorTimeout(r, d.timeout),
    ...readTokenDomain(r, d.token_version),
  };
}
