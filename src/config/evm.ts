/**
 * The option parsers the x402 methods' sections share (x402, upto, escrow, batch_settlement): the EVM network, an
 * address, the facilitator's timeout, the EIP-712 token domain of an asset sluice does not know. Written once
 * so every section says the same reason for the same mistake. Pure.
 */
import { chainIdOf, toCaip2 } from '../x402/index.ts';
import type { SectionReader } from './reader.ts';
import { isEvmAddress, parseSecondsToMs, type Parsed } from './values.ts';

/** The chain id a network's sections fall back to when it names none they know (Base). */
const BASE_CHAIN_ID = 8453;

/** CAIP-2 (`eip155:8453`); x402 v1 names (`base`) are accepted and stored in CAIP-2 form. */
export function parseNetwork(v: string): Parsed<string> {
  const caip2 = toCaip2(v);
  return caip2
    ? { ok: true, value: caip2 }
    : {
        ok: false,
        reason: 'must be an EVM network: eip155:<chain id> (CAIP-2) or an x402 v1 name such as base or base-sepolia',
      };
}

/** An EVM address, stored lower-case. */
export function parseAddress(v: string): Parsed<string> {
  return isEvmAddress(v)
    ? { ok: true, value: v.toLowerCase() }
    : { ok: false, reason: 'must be an address (0x and 40 hex digits)' };
}

/** The network and its chain id. */
export function chainOf(network: string): { network: string; chainId: number } {
  return { network, chainId: chainIdOf(network) ?? BASE_CHAIN_ID };
}

/** `timeout`: seconds per facilitator request, 1 to 120, as milliseconds. */
export function readFacilitatorTimeout(r: SectionReader, fallbackSeconds: number): number {
  return r.parsed('timeout', fallbackSeconds * 1000, (v) => parseSecondsToMs(v, 1, 120));
}

/** `token_name` and `token_version`: the EIP-712 domain of a plan asset sluice's table does not know. */
export function readTokenDomain(
  r: SectionReader,
  fallbackVersion: string,
): { tokenName: string; tokenVersion: string } {
  return {
    tokenName: r.string('token_name', '', (v) => (v.length <= 64 ? undefined : 'must be at most 64 characters')),
    tokenVersion: r.string('token_version', fallbackVersion, (v) =>
      v.length >= 1 && v.length <= 16 ? undefined : 'must be 1 to 16 characters',
    ),
  };
}
