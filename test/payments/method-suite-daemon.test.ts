// tier: daemon
/**
 * The PaymentMethod suite (method-suite.ts) against every method whose rig needs only the real daemon (no chain, no
 * peer): one suite per method, in the list's order.
 */
import { METHOD_RIGS, methodNames } from './method-rigs.ts';
import { paymentMethodSuite } from './method-suite.ts';

const only = process.env.SLUICE_METHOD_SUITE?.split(',');
for (const name of methodNames()) {
  const entry = METHOD_RIGS[name];
  if (entry?.tier !== 'daemon' || (only && !only.includes(name))) continue;
  paymentMethodSuite(name, entry.make);
}
