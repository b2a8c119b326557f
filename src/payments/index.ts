/** Public surface of the payments area. */
export type { PaymentContext, PaymentMethod, PaymentRef } from './types.ts';
export { PaymentRegistry } from './registry.ts';
export { grantMethod, grantReference } from './grant.ts';
export { builtinPaymentMethods, createPaymentRegistry } from './builtin.ts';
