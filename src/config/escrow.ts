/**
 * The `escrow` section: customers pay with an escrow session (payment method `x402-session`): a deposit held by the
 * escrow contract, buyer-signed usage receipts, the unused part refunded at the end. Validated only when enabled, like
 * every upstream section. docs/escrow.md explains the flow; docs/configuration.md each option.
 */
import { chainOf, parseAddress, parseNetwork } from './evm.ts';
import type { SectionReader } from './reader.ts';
import { parseHttpUrl, parseInteger, parseSecondsToMs } from './values.ts';

export interface EscrowConfig {
  enabled: boolean;
  /** Base URL of the facilitator's sessions API (/session/create, /consume, /close, GET /session/:network/:id). */
  facilitatorUrl: string;
  /** CAIP-2 (`eip155:8453`); v1 names (`base`) are accepted in UCI and stored in this form. */
  network: string;
  chainId: number;
  /** Lower-case address of the SessionEscrow contract: the deposit's payee and the receipts' verifyingContract. */
  address: string;
  /** Lower-case address paid for the units consumed (the session's `seller`). */
  seller: string;
  /** Steps metered usage may run ahead of the buyer's latest receipt before the gate closes (`awaiting-receipt`). */
  creditSteps: number;
  /** After a session ends, how long a final receipt may still arrive before sluice closes the escrow session. */
  closeGraceMs: number;
}

export const ESCROW_DEFAULTS = { network: 'eip155:8453', credit_steps: 1, close_grace: 30 } as const;

export function readEscrowSection(r: SectionReader, enabled: boolean): EscrowConfig {
  const d = ESCROW_DEFAULTS;
  const facilitatorUrl = r.required('facilitator_url', '', parseHttpUrl);
  const net = r.parsed('network', d.network, parseNetwork);
  return {
    enabled,
    facilitatorUrl,
    ...chainOf(net),
    address: r.required('address', '', parseAddress, 'is required: the SessionEscrow contract address'),
    seller: r.required('seller', '', parseAddress, 'is required: the address paid for the units consumed'),
    creditSteps: r.parsed('credit_steps', d.credit_steps, (v) => parseInteger(v, 0, 1000)),
    closeGraceMs: r.parsed('close_grace', d.close_grace * 1000, (v) => parseSecondsToMs(v, 0, 3600)),
  };
}
