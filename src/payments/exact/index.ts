/**
 * x402 `exact` (x402.enabled): one EIP-3009 authorization settled before the session; resolves settles a crash left
 * pending.
 */
import type { PaymentPlugin } from '../plugin.ts';
import type { X402Face, X402Scheme } from '../plugin-faces.ts';
import { X402Method } from './x402-exact.ts';

const SCHEME: X402Scheme = {
  scheme: 'exact',
  method: 'x402',
  planKey: 'x402',
  alwaysListed: true,
  takesUnnamed: true,
  sells: true,
};
const ADDRESS = /^0x[0-9a-f]{40}$/;

/** The `exact` face of a method (the LAN endpoint's /buy and /plans). */
export function exactFace(x402: Pick<X402Method, 'requirementsFor' | 'settlementOf'>): X402Face {
  return {
    ...SCHEME,
    offered: () => true,
    offer: (quote) => x402.requirementsFor(quote) as unknown as Record<string, unknown>,
    settlementOf: (reference) => x402.settlementOf(reference),
  };
}

export const exactPlugin: PaymentPlugin = {
  name: 'x402',
  damagedState: 'ERR_X402_STORE',
  switch: 'x402',
  register(add) {
    add.x402Scheme(SCHEME);
    add.lanUse({ name: 'x402', on: (c) => c.x402.enabled });
    // An `exact` payment's reference is `from:nonce`: its EIP-3009 payer, read whether or not the method runs now.
    add.payersOf((session) =>
      session.payments.flatMap((p) => {
        const payer = p.method === SCHEME.method ? p.reference.split(':')[0]?.toLowerCase() : undefined;
        return payer !== undefined && ADDRESS.test(payer) ? [payer] : [];
      }),
    );
  },
  async open({ config, sessions, log, background, atStart }) {
    const stateDir = config.main.stateDir;
    const x402 = await X402Method.open({ config: config.x402, stateDir, sessions, log, atStart });
    // The resolver of settles a crash left unanswered: a pass once the daemon runs, again while any is pending (a
    // failed pass is logged by the resolver and tried again).
    background({
      start: () =>
        void x402
          .resolvePending()
          .then((r) => {
            if (r.granted + r.failed + r.pending + r.unconfirmed > 0) log.info('x402 pending purchases', { ...r });
          })
          .catch(() => undefined),
      stop: () => x402.stopResolving(),
    });
    return {
      methods: [x402],
      reconfigure: (next) => x402.reconfigure(next.x402),
      close: () => x402.close(),
      x402: exactFace(x402),
    };
  },
};
