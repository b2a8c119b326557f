/**
 * The PaymentMethod suite's rigs (method-suite.ts), one per method, keyed by the name its plugin (payments/plugins.ts)
 * or the built-in list (payments/builtin.ts) gives it, with the tier its rig needs. A method in the lists without a rig
 * here fails the suite (method-rigs.test.ts, fast tier): joining the list is what brings the money rules.
 * Loaded lazily: the fast check reads names only.
 */
import { builtinPaymentMethods } from '../../src/payments/builtin.ts';
import { PAYMENT_PLUGINS } from '../../src/payments/index.ts';
import type { MethodRig } from './method-suite.ts';

export interface RigEntry {
  tier: 'daemon' | 'chain' | 'peers';
  make(): Promise<MethodRig>;
}

export const METHOD_RIGS: Readonly<Record<string, RigEntry>> = {
  x402: { tier: 'chain', make: async () => (await import('./rigs/exact.ts')).exactRig() },
  'x402-session': { tier: 'chain', make: async () => (await import('./rigs/escrow-session.ts')).escrowSessionRig() },
  'batch-settlement': {
    tier: 'chain',
    make: async () => (await import('./rigs/batch-settlement.ts')).batchSettlementRig(),
  },
  upto: { tier: 'chain', make: async () => (await import('./rigs/upto.ts')).uptoRig() },
  trial: { tier: 'daemon', make: async () => (await import('./rigs/local.ts')).trialRig() },
  grant: { tier: 'daemon', make: async () => (await import('./rigs/local.ts')).grantRig() },
  voucher: { tier: 'daemon', make: async () => (await import('./rigs/local.ts')).voucherRig() },
  cashu: { tier: 'daemon', make: async () => (await import('./rigs/cashu.ts')).cashuRig() },
  // The RADIUS plugin's `voucher`, asking a real FreeRADIUS (Debian's freeradius: .ci/run installs it).
  radius: { tier: 'peers', make: async () => (await import('./rigs/radius.ts')).radiusRig() },
};

/**
 * Methods landing while this suite was written, whose rigs their owners or the lead add: each name here is
 * a debt, listed so the gap is seen, not silently passed. Empty it as the rigs arrive.
 */
export const PENDING_RIGS: ReadonlySet<string> = new Set<string>([]);

/** Every payment method a router can have: the plugins' and the built-ins', by name. */
export function methodNames(): string[] {
  return [...PAYMENT_PLUGINS.map((p) => p.name), ...builtinPaymentMethods().map((m) => m.name)];
}
