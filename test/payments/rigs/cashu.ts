/**
 * The PaymentMethod suite's rig for `cashu` (payments/cashu): the real daemon with a tollgate section and the lab mint
 * (test/peers/cashu-mint.ts) in this process. A payment is a fresh 10-sat token (two proofs, 8 + 2); its reference
 * is the method's (a hash of the proofs' Ys). "Money" is what the mint says was spent and the sessions handed out.
 * The bad payment is a token already applied: refused by precheck from the method's own store (the in-process method
 * gets a copy of the daemon's, seedState). authorize's irreversible call is /v1/swap, which the mint can hold.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { getDecodedToken } from '@cashu/cashu-ts';
import { DaemonLab } from '../../daemon/harness.ts';
import { CashuMint } from '../../peers/cashu-mint.ts';
import { referenceOf } from '../../../src/cashu/token.ts';
import type { MethodRig, RigPayment } from '../method-suite.ts';

export async function cashuRig(): Promise<MethodRig> {
  const mint = await CashuMint.start();
  const lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig: `
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption price_per_step '1'
`,
  });
  try {
    await lab.startDaemon();
  } catch (err) {
    await lab.close();
    await mint.stop();
    throw err;
  }
  const paymentOf = async (): Promise<RigPayment> => {
    const token = await mint.fundToken(10);
    const proofs = getDecodedToken(
      token,
      mint.keysets().map((k) => k.id),
    ).proofs;
    return {
      fields: { method: 'cashu', token },
      reference: referenceOf(proofs.map((p) => ({ id: p.id, amount: p.amount.toNumber(), secret: p.secret, C: p.C }))),
    };
  };
  // The bad payment: a token this router already took.
  const applied = await paymentOf();
  lab.portal.addClient('02:00:00:5e:ff:01', '10.0.255.1');
  const first = await lab.callStatus('purchase', {
    mac: '02:00:00:5e:ff:01',
    plan: 'time',
    payment: applied.fields,
  } as never);
  if (first.status !== 0) throw new Error(`the rig's first purchase failed: ${JSON.stringify(first.data)}`);
  return {
    lab,
    rules: { ceiling: false, refund: false, pending: true },
    replayCodes: ['ERR_PAYMENT_REPLAYED', 'ERR_CASHU_TOKEN_SPENT'],
    pendingCodes: ['ERR_CASHU_PENDING', 'ERR_PAYMENT_IN_PROGRESS'],
    plan: { id: 'time', allotment: 600n },
    payment: paymentOf,
    badPayment: async () => applied,
    money: async () => ({
      sessions: Number((await lab.call('sessions', { limit: 1 } as never)).total),
      spent: mint.spent().length,
    }),
    settledAfterEnd: async () => {},
    holdAuthorize: async () => {
      const held = mint.fault('POST /v1/swap', 'hold', { times: 1 });
      await held.arrived;
    },
    seedState: (stateDir) => {
      const ledger = join(lab.dir, 'state', 'cashu', 'ledger.log');
      mkdirSync(join(stateDir, 'cashu'), { recursive: true, mode: 0o700 });
      if (existsSync(ledger)) copyFileSync(ledger, join(stateDir, 'cashu', 'ledger.log'));
      // A ledger that was ever sealed is read only with its seal: the copy takes both, as a backup must.
      const seal = join(lab.dir, 'state', 'cashu-ledger.seal');
      if (existsSync(seal)) copyFileSync(seal, join(stateDir, 'cashu-ledger.seal'));
    },
    close: async () => {
      await lab.close();
      await mint.stop();
    },
  };
}
