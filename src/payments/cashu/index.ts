/**
 * Cashu receive (tollgate section, issue 39): payment method `cashu`, tokens swapped at the mint before the session,
 * the ecash held in custody (store.ts). Open intents are resolved at start and while any is open.
 */
import type { PaymentPlugin } from '../plugin.ts';
import { CashuMethod } from './cashu.ts';

export const cashuPlugin: PaymentPlugin = {
  name: 'cashu',
  switch: 'tollgate',
  async open({ config, sessions, log }) {
    const cashu = await CashuMethod.open({ config, sessions, log });
    return {
      methods: [cashu],
      reconfigure: (next) => cashu.reconfigure(next),
      // Keysets first: quoteFor prices a token with them. Then every intent a crash or a silent mint left open.
      reconcile: async () => { await cashu.refreshKeysets(); await cashu.resolvePending(); },
      close: () => cashu.close(),
    };
  },
};
