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
    // quoteFor prices a token with the mint's keysets (NUT-02 fees, V4 short ids): read them before the first purchase
    // (each mint bounded; one that does not answer is read again at its first token).
    await cashu.refreshKeysets();
    return {
      methods: [cashu],
      reconfigure: (next) => cashu.reconfigure(next),
      // Every intent a crash or a silent mint left open.
      reconcile: () => cashu.resolvePending(),
      close: () => cashu.close(),
    };
  },
};
