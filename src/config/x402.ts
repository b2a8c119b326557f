/**
 * The `x402` section: customers pay with x402 `exact` payments (EIP-3009 signed stablecoin transfers) settled by a
 * facilitator. Validated only when enabled, like every upstream section. docs/x402.md explains each option.
 */
import { DEFAULT_RPC_URLS, defaultRpcUrl } from '../x402/index.ts';
import { chainOf, parseAddress, parseNetwork, readFacilitatorTimeout, readTokenDomain } from './evm.ts';
import type { SectionReader } from './reader.ts';
import { parseHttpUrl, parseInteger } from './values.ts';

export interface X402Config {
  enabled: boolean;
  /** Base URL of the facilitator's /verify, /settle, /supported. */
  facilitatorUrl: string;
  /** CAIP-2 (`eip155:8453`); v1 names (`base`) are accepted in UCI and stored in this form. */
  network: string;
  chainId: number;
  /** Lower-case address the customers pay (`x402.pay_to`). */
  payTo: string;
  /** Longest validity window of an authorization (validBefore − now) sluice accepts; also what 402 answers offer. */
  maxTimeoutSeconds: number;
  /** Per facilitator request. */
  timeoutMs: number;
  /**
   * The chain's JSON-RPC URL the resolver reads (a settle whose answer was lost: did the transfer happen?): `rpc_url`
   * as set, else the network's public default (x402/networks.ts DEFAULT_RPC_URLS); '' with `rpc_url 'none'` or on a
   * network without a default: no chain lookups.
   */
  rpcUrl: string;
  /** Where rpcUrl came from. */
  rpcUrlSource: 'option' | 'network-default' | 'none';
  /** EIP-712 domain of plan assets sluice does not know (its table has USDC on Base and Base Sepolia). */
  tokenName: string;
  tokenVersion: string;
}

export const X402_DEFAULTS = { max_timeout_seconds: 300, timeout: 10, token_version: '2' } as const;

/** `rpc_url 'none'`: no chain lookups at all, not even the network's default. */
export const RPC_URL_NONE = 'none';

/**
 * `rpcDefaults`: the per-network default endpoints (tests point a network at their local chain; the daemon takes
 * x402/networks.ts's table).
 */
export function readX402Section(
  r: SectionReader,
  enabled: boolean,
  rpcDefaults: Readonly<Record<string, string>> = DEFAULT_RPC_URLS,
): X402Config {
  const d = X402_DEFAULTS;
  const net = r.required(
    'network',
    'eip155:8453',
    parseNetwork,
    'is required: eip155:<chain id>, e.g. eip155:8453 for Base',
  );
  const payTo = r.required('pay_to', '', parseAddress, 'is required: the address customers pay');
  const rpcOption = r.parsed('rpc_url', '', (v) => (v === RPC_URL_NONE ? { ok: true, value: v } : parseHttpUrl(v)));
  const rpcDefault = defaultRpcUrl(net, rpcDefaults);
  const rpc: Pick<X402Config, 'rpcUrl' | 'rpcUrlSource'> =
    rpcOption === RPC_URL_NONE
      ? { rpcUrl: '', rpcUrlSource: 'none' }
      : rpcOption !== ''
        ? { rpcUrl: rpcOption, rpcUrlSource: 'option' }
        : rpcDefault !== ''
          ? { rpcUrl: rpcDefault, rpcUrlSource: 'network-default' }
          : { rpcUrl: '', rpcUrlSource: 'none' };
  return {
    enabled,
    facilitatorUrl: r.required('facilitator_url', '', parseHttpUrl),
    ...chainOf(net),
    payTo,
    maxTimeoutSeconds: r.parsed('max_timeout_seconds', d.max_timeout_seconds, (v) => parseInteger(v, 30, 3600)),
    timeoutMs: readFacilitatorTimeout(r, d.timeout),
    ...rpc,
    ...readTokenDomain(r, d.token_version),
  };
}
