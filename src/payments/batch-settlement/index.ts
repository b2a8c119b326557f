/** x402 batch-settlement (batch_settlement.enabled): a session is charged what it used from the customer's channel. */
import type { PaymentPlugin } from '../plugin.ts';
import { openBatchSettlement } from '../x402-batch-ends.ts';

export const batchSettlementPlugin: PaymentPlugin = {
  name: 'batch-settlement',
  switch: 'batchSettlement',
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
    };
  },
};
