/** x402 batch-settlement (batch_settlement.enabled): a session is charged what it used from the customer's channel. */
import type { PaymentPlugin, X402Scheme } from '../plugin.ts';
import { openBatchSettlement } from './x402-batch-ends.ts';

const SCHEME: X402Scheme = {
  scheme: 'batch-settlement', method: 'batch-settlement', planKey: 'batch_settlement', takesUnnamed: true, reasonAsError: true, corrective: true, sells: true,
};

export const batchSettlementPlugin: PaymentPlugin = {
  name: 'batch-settlement',
  switch: 'batchSettlement',
  x402: SCHEME,
  lanUse: { name: 'batch_settlement', on: (c) => c.batchSettlement.enabled },
  async open({ config, sessions, endsWritten, log }) {
    const batch = await openBatchSettlement({ config: config.batchSettlement, stateDir: config.main.stateDir, sessions, endsWritten, log });
    return {
      methods: [batch.method],
      reconfigure: (next) => batch.method.reconfigure(next.batchSettlement),
      // Open charges against the journal (ended while down → charged), then the claim/refund pass.
      reconcile: () => batch.ends.reconcile(),
      // Ends the facilitator exchanges in flight: a peer that holds one must not hold the stop.
      close: async () => { batch.watch.stop(); batch.settler.stop(); batch.method.close(); },
      ubus: { batch: batch.method },
      lan: { batch: batch.method },
      x402: {
        ...SCHEME, offered: () => true,
        // A plan with no asset has no token to deposit: not offered (as `exact` does not offer it).
        offer: (quote) => (quote.asset === '' ? null : batch.method.requirements(quote.asset, quote.price)),
        settlementOf: (reference) => batch.method.settlementOf(reference),
      },
    };
  },
};
