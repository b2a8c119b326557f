/**
 * Public surface of src/payments/: the PaymentMethod contract and its registry, and one adapter per method (grant,
 * x402 `exact`, the x402-session escrow method, the RADIUS voucher) over the leaf libraries x402/, escrow/, radius/.
 */
export type { PaymentFields, PaymentMethod, PurchaseRequest, Quote, QuoteInput } from './types.ts';
export { PaymentRegistry } from './registry.ts';
export { grantReference } from './grant/grant.ts';
export { createPaymentRegistry } from './builtin.ts';
export type { DoorServices, LanMethod, LanParts, PaymentPlugin, RegisteredPlugin, LanUse } from './plugin.ts';
export type { LanRequest, LanRoute, UbusFace, X402Face, X402Scheme } from './plugin-faces.ts';
export { PaymentPlugins } from './plugin-host.ts';
export { lanMethodOf } from './registrations.ts';
export { PAY_FORM_KEYS, PAYMENT_PLUGINS, REGISTERED, X402_SCHEMES } from './plugins.ts';
