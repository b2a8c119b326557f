/** Public surface of the payments area. */
export type { GrantTerms, PaymentContext, PaymentMethod, PaymentRef, PrecheckResult } from './types.ts';
export { PaymentRegistry } from './registry.ts';
export { grantMethod, grantReference } from './grant.ts';
export { builtinPaymentMethods, createPaymentRegistry } from './builtin.ts';
