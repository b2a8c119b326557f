// tier: peers; needs freeradius
/**
 * The PaymentMethod suite (method-suite.ts) against every method whose rig needs a peer installed beside Node (the
 * RADIUS `voucher`: FreeRADIUS), under the real daemon: one suite per method, in the list's order. Without the peer
 * the runner counts the file as a SKIP (docs/testing.md "Tiers and skips"); CI installs it, so there it runs.
 */
import { METHOD_RIGS, methodNames } from './method-rigs.ts';
import { paymentMethodSuite } from './method-suite.ts';

const only = process.env.SLUICE_METHOD_SUITE?.split(',');
for (const name of methodNames()) {
  const entry = METHOD_RIGS[name];
  if (entry?.tier !== 'peers' || (only && !only.includes(name))) continue;
  paymentMethodSuite(name, entry.make);
}
