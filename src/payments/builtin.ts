/** Every payment method sluice ships: one line each. */
import { grantMethod } from './grant.ts';
import { PaymentRegistry } from './registry.ts';
import type { PaymentMethod } from './types.ts';

export function builtinPaymentMethods(): PaymentMethod[] {
  return [
    grantMethod,
  ];
}

export function createPaymentRegistry(extra: Iterable<PaymentMethod> = []): PaymentRegistry {
  return new PaymentRegistry([...builtinPaymentMethods(), ...extra]);
}
