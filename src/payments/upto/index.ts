/** x402 upto (upto.enabled): one Permit2 authorization of the ceiling, the metered amount settled once at the end. */
import { lazyPart } from '../../lazy.ts';
import type { PaymentPlugin } from '../plugin.ts';
import type { X402Scheme } from '../plugin-faces.ts';

/** Its code, in a file of its own, read when the method opens (docs/performance.md, "Idle memory"). */
const uptoCode = lazyPart('the upto method', () => import('./x402-upto-ends.ts'));

const SCHEME: X402Scheme = { scheme: 'upto', method: 'upto', planKey: 'upto', reasonAsError: true };

export const uptoPlugin: PaymentPlugin = {
  name: 'upto',
  damagedState: 'ERR_UPTO_STORE',
  switch: 'upto',
  register(add) {
    add.x402Scheme(SCHEME);
    add.lanUse({ name: 'upto', on: (c) => c.upto.enabled });
  },
  async open({ config, sessions, endsWritten, log, background, atStart }) {
    const { openUpto } = await uptoCode();
    const stateDir = config.main.stateDir;
    const upto = await openUpto({ config: config.upto, stateDir, sessions, endsWritten, log, atStart });
    // The sweep of due authorizations (once the reconcile settled what was due at start), and the asks again.
    background(upto.ends.background);
    for (const pass of upto.method.background) background(pass);
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
      x402: {
        ...SCHEME,
        offered: () => upto.method.offered,
        offer: (quote) => upto.method.offerFor(quote),
        settlementOf: (reference) => upto.method.settlementOf(reference),
      },
    };
  },
};
