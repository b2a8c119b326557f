/**
 * The PaymentMethod suite's rig for x402 `exact` (payment method `x402`): anvil's USDC, @x402's facilitator behind a
 * holding proxy (a /settle held where a kill -9 interrupts authorize), the daemon with x402 on, its resolver asking
 * the chain (rpc_url) what a held /settle did. A payment is one EIP-3009 authorization signed with viem.
 */
import type { Address } from 'viem';
import { signAuthorization } from '../../chain/index.ts';
import { x402Section } from '../../helpers/uci-sections.ts';
import type { MethodRig, RigPayment } from '../method-suite.ts';
import { bytesPlan, newBuyer, PLAN, PRICE, startMethodDaemon } from './chain-common.ts';

export async function exactRig(): Promise<MethodRig> {
  let payTo: Address = '0x0000000000000000000000000000000000000000';
  const rig = await startMethodDaemon({
    holdingProxy: true,
    config: ({ chain, usdc, proxy }) => {
      payTo = chain.newAccount().address;
      return bytesPlan(usdc) + x402Section({ facilitatorUrl: proxy!.url, payTo, rpcUrl: chain.rpcUrl, timeoutS: 5 });
    },
  });
  const { chain, usdc, lab } = rig;

  async function signed(to: Address): Promise<RigPayment> {
    const buyer = await newBuyer(chain, usdc);
    const { authorization, signature } = await signAuthorization(buyer, usdc, { to, value: PRICE });
    const payload = {
      x402Version: 2,
      accepted: {
        scheme: 'exact',
        network: 'eip155:84532',
        amount: PRICE.toString(),
        asset: usdc.address,
        payTo: to,
        maxTimeoutSeconds: 300,
        extra: { name: 'USDC', version: '2' },
      },
      payload: { signature, authorization },
    };
    return {
      fields: { method: 'x402', payload },
      reference: `${buyer.address.toLowerCase()}:${authorization.nonce}`,
      buyer: buyer.address,
    };
  }

  return {
    lab,
    rules: { ceiling: true, refund: false, pending: true },
    replayCodes: ['ERR_PAYMENT_REPLAYED', 'ERR_X402_NONCE_REPLAYED'],
    pendingCodes: ['ERR_X402_SETTLEMENT_PENDING', 'ERR_PAYMENT_IN_PROGRESS'],
    plan: PLAN,
    payment: () => signed(payTo),
    // Signed to someone else: the local payee check refuses it before /verify.
    badPayment: () => signed(chain.newAccount().address),
    money: async (p) => [await usdc.balanceOf(p.buyer as Address), await usdc.balanceOf(payTo)],
    // Paid in full before the session: nothing follows its end.
    settledAfterEnd: async () => {},
    holdAuthorize: () => rig.proxy!.hold(),
    close: () => rig.close(),
  };
}
