/**
 * The `upto` section: customers pay with x402's `upto` scheme (payment method `upto`): one Permit2 authorization of
 * a maximum (the session's ceiling), the metered amount settled once at the session's end, nothing when nothing was
 * used. Validated only when enabled, like every upstream section. docs/upto.md explains the flow.
 */
import { chainOf, parseAddress, parseNetwork, readFacilitatorTimeout } from './evm.ts';
import type { SectionReader } from './reader.ts';
import { parseHttpUrl, parseInteger } from './values.ts';

export interface UptoConfig {
  enabled: boolean;
  /** Base URL of the facilitator's /verify, /settle, /supported (it must list `upto` on `network`). */
  facilitatorUrl: string;
  /** CAIP-2; v1 names are accepted in UCI and stored in this form. */
  network: string;
  chainId: number;
  /** Lower-case: where settled money goes (the witness `to`). */
  payTo: string;
  /**
   * What 402 answers offer as maxTimeoutSeconds (the client's Permit2 deadline is now + this): the longest a session
   * paid this way may run before it must be settled. A time plan longer than it, or a data plan without a
   * time_limit within it, cannot be sold this way.
   */
  maxTimeoutSeconds: number;
  /** Per facilitator request. */
  timeoutMs: number;
}

export const UPTO_DEFAULTS = { network: 'eip155:8453', max_timeout_seconds: 172_800, timeout: 15 } as const;
/**
 * Bounds of max_timeout_seconds (as batch-settlement's withdraw delay): 15 minutes for a session and its settle, at
 * most 30 days.
 */
export const UPTO_MIN_TIMEOUT_S = 900;
export const UPTO_MAX_TIMEOUT_S = 2_592_000;

export function readUptoSection(r: SectionReader, enabled: boolean): UptoConfig {
  const d = UPTO_DEFAULTS;
  const net = r.parsed('network', d.network, parseNetwork);
  return {
    enabled,
    facilitatorUrl: r.required(
      'facilitator_url',
      '',
      parseHttpUrl,
      'is required: a facilitator that lists upto in GET /supported',
    ),
    ...chainOf(net),
    payTo: r.required('pay_to', '', parseAddress, 'is required: the address settled money goes to'),
    maxTimeoutSeconds: r.parsed('max_timeout_seconds', d.max_timeout_seconds, (v) =>
      parseInteger(v, UPTO_MIN_TIMEOUT_S, UPTO_MAX_TIMEOUT_S),
    ),
    timeoutMs: readFacilitatorTimeout(r, d.timeout),
  };
}
