/** x402 upto (upto.enabled): one Permit2 authorization of the ceiling, the metered amount settled once at the end. */
import type { PaymentPlugin } from '../plugin.ts';
import { openUpto } from '../x402-upto-ends.ts';

export const uptoPlugin: PaymentPlugin = {
  name: 'upto',
  switch: 'upto',
  async open({ config, sessions, endsWritten, log }) {
    const upto = await openUpto({ config: config.upto, stateDir: config.main.stateDir, sessions, endsWritten, log });
    return {
      methods: [upto.method],
      reconfigure: (next) => {
        upto.method.reconfigure(next.upto);
        void upto.method.refreshSupported();
      },
      // Open authorizations against the journal (ended while down → settled once), then the settles without an answer.
      reconcile: () => upto.ends.reconcile(),
      // Whether the facilitator serves upto at all (/supported): until it says so, upto is not offered.
      reconciled: () => void upto.method.refreshSupported(),
      close: async () => upto.method.close(),
      lan: { upto: upto.method },
    };
  },
};
