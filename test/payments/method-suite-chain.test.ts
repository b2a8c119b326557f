// tier: chain
/**
 * The PaymentMethod suite (method-suite.ts) against every method whose rig runs on the chain tier (anvil, @x402's
 * facilitators, the real daemon): one suite per method, in the list's order.
 */
import { METHOD_RIGS, methodNames } from './method-rigs.ts';
import { paymentMethodSuite } from './method-suite.ts';

const only = process.env.SLUICE_METHOD_SUITE?.split(',');
for (const name of methodNames()) {
  const entry = METHOD_RIGS[name];
  if (entry?.tier !== 'chain' || (only && !only.includes(name))) continue;
  paymentMethodSuite(name, entry.make);
}
