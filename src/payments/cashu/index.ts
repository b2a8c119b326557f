/**
 * Cashu receive (tollgate section): payment method `cashu`, tokens swapped at the mint before the session,
 * the ecash held in custody (store.ts). Open intents are resolved at start and while any is open. The operator's side
 * (custody.ts): payout to the Lightning address, keyset retirement, ubus `cashu_balance` and `cashu_payout`. Its own
 * listener is TollGate's door (tollgate/, signing through nostr/); the Cashu protocol is the leaf src/cashu/.
 */
import { SluiceError } from '../../errors.ts';
import { lazyPart } from '../../lazy.ts';
import type { PaymentPlugin } from '../plugin.ts';
import type { UbusFace } from '../plugin-faces.ts';
import type { CashuCustody, CashuCustodyFace } from './custody.ts';
import { cashuLanRoutes, type CashuLanFace } from './lan-routes.ts';

/**
 * Its method, custody and the LAN routes' face, in files of their own, read when it opens (docs/performance.md, "Idle
 * memory").
 */
const cashuCode = lazyPart('the cashu method', () =>
  Promise.all([import('./cashu.ts'), import('./custody.ts'), import('./tollgate/keeper.ts'), import('./lan-face.ts')]),
);

declare module '../plugin-faces.ts' {
  /** The ecash held (cashu_balance, cashu_payout). */
  interface UbusFace {
    cashu?: CashuCustodyFace;
  }
  /** The pay page's Cashu offer, payment and Lightning invoices (/cashu/*). */
  interface LanFace {
    cashu?: CashuLanFace;
  }
}

export type { CashuCustodyFace, CashuLanFace };

function custodyOf(face: UbusFace | null): CashuCustodyFace {
  if (!face?.cashu) {
    throw new SluiceError(
      'ERR_PAYMENT_METHOD_UNAVAILABLE',
      'the cashu method is not running (tollgate section off, or its custody files cannot be read: the log says why)',
    );
  }
  return face.cashu;
}

export const cashuPlugin: PaymentPlugin = {
  name: 'cashu',
  damagedState: 'ERR_CASHU_STORE_DAMAGED',
  switch: 'tollgate',
  register(add) {
    // Its part of the pay page (docs/tollgate.md "Pay page").
    add.pageScript('cashu-page.js');
    // ubus stats' `cashu` (CashuMethod.stats): what is held, what is open, the Lightning quotes someone else minted.
    add.stats({ key: 'cashu', absent: { running: false } });
    // The pay page's "Pay with Cashu" (GET /cashu/offer, POST /cashu/pay): the LAN endpoint runs for it.
    add.lanUse({ name: 'cashu', on: (c) => c.tollgate !== null });
    for (const route of cashuLanRoutes) add.lanRoute(route);
    add.ubusMethod('cashu_balance', { args: {}, adminOnly: false, handler: (_a, face) => custodyOf(face).balance() });
    add.ubusMethod('cashu_payout', {
      args: { mint: { kind: 'string', maxLength: 512 } },
      adminOnly: true,
      handler: (a, face) => custodyOf(face).payout(a.mint as string | undefined),
    });
  },
  async open({ config, sessions, log, door, stats, background, atStart }) {
    const [{ CashuMethod }, { CashuCustody }, { tollgateDoorKeeper }, { cashuLanFace }] = await cashuCode();
    const cashu = await CashuMethod.open({ config, sessions, log, atStart });
    let current = config;
    // quoteFor prices a token with the mint's keysets (NUT-02 fees, V4 short ids): read them before the first purchase
    // (each mint bounded; one that does not answer is read again at its first token).
    await cashu.refreshKeysets();
    let custody: CashuCustody;
    try {
      custody = CashuCustody.open({
        store: cashu.store,
        stateDir: config.main.stateDir,
        tollgate: config.tollgate!,
        log,
        mints: cashu.mints,
      });
    } catch (err) {
      await cashu.close();
      throw err;
    }
    stats(() => cashu.stats());
    // Payouts and keyset retirement, every minute once the daemon runs (custody.ts); stopped when the plugin closes.
    background(custody.background);
    // Open intents looked at again while any is open (a silent mint, a swap without an answer).
    background(cashu.again.background);
    // TollGate's door (tollgate.listen): its clients' routes on their own port, beside the LAN endpoint.
    const keeper = tollgateDoorKeeper(log);
    door(keeper);
    background(keeper.probes);
    return {
      methods: [cashu],
      reconfigure: (next) => {
        current = next;
        cashu.reconfigure(next);
        if (next.tollgate) custody.reconfigure(next.tollgate);
      },
      // Keysets first: quoteFor prices a token with them. Then every intent a crash or a silent mint left open, and
      // every payout or keyset swap on its way out.
      reconcile: async () => {
        await cashu.refreshKeysets();
        await cashu.resolvePending();
        await custody.reconcile();
      },
      close: async () => {
        await custody.close();
        await cashu.close();
      },
      ubus: { cashu: custody },
      lan: { cashu: cashuLanFace(() => current, cashu) },
    };
  },
};
