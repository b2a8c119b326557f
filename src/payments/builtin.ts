/**
 * The payment methods every router has whatever its config (the admin's `grant`), and the registry the merchant picks
 * from: those plus the methods the daemon builds from config (x402, x402-session, the RADIUS voucher) and passes in.
 */
import { grantMethod } from './grant/grant.ts';
import { PaymentRegistry } from './registry.ts';
import type { PaymentMethod } from './types.ts';

export function builtinPaymentMethods(): PaymentMethod[] {
  return [grantMethod];
}

export function createPaymentRegistry(extra: Iterable<PaymentMethod> = []): PaymentRegistry {
  return new PaymentRegistry([...builtinPaymentMethods(), ...extra]);
}
