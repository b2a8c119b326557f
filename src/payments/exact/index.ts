/** x402 `exact` (x402.enabled): one EIP-3009 authorization settled before the session; resolves settles a crash left pending. */
import type { PaymentPlugin } from '../plugin.ts';
import { X402Method } from '../x402-exact.ts';

export const exactPlugin: PaymentPlugin = {
  name: 'x402',
  switch: 'x402',
  async open({ config, sessions, log }) {
    const x402 = await X402Method.open({ config: config.x402, stateDir: config.main.stateDir, sessions, log });
    return {
      methods: [x402],
      reconfigure: (next) => x402.reconfigure(next.x402),
      start: () => {
        void x402.resolvePending().then((r) => {
          if (r.granted + r.failed + r.pending + r.unconfirmed > 0) log.info('x402 pending purchases', { ...r });
        });
      },
      close: () => x402.close(),
      lan: { x402 },
    };
  },
};
