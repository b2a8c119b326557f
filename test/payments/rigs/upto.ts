/**
 * The PaymentMethod suite's rig for x402 `upto`: anvil with Permit2 and the upto proxy at their canonical addresses
 * (test/chain/Upto.sol), @x402/evm's own upto facilitator, the daemon with upto on; a payment is @x402/evm's own upto
 * client's Permit2 authorization for the offer the daemon's 402 makes. Its ceiling is the plan's price: the session
 * may use it up, and the end settles what was used. authorize only verifies (nothing moves until the end), so there
 * is no interrupted authorize to resolve: the settle after the end has its own crash test (upto-chain.test.ts).
 */
import type { Address } from 'viem';
import { UptoEvmScheme } from '@x402/evm/upto/client';
import { deployUptoStack, newPermit2Buyer } from '../../chain/upto.ts';
import { uptoSection } from '../../helpers/uci-sections.ts';
import type { MethodRig, RigPayment } from '../method-suite.ts';
import { bytesPlan, FUNDS, PLAN, startMethodDaemon } from './chain-common.ts';
import { stateRecord } from './state-file.ts';

/** The LAN caller (this process): a portal client, since /buy answers only devices on the WiFi. */
const LAN_MAC = '02:00:00:5f:00:01';

export async function uptoRig(): Promise<MethodRig> {
  let payTo: Address = '0x0000000000000000000000000000000000000000';
  const rig = await startMethodDaemon({
    deploy: deployUptoStack,
    facilitator: () => ({ upto: true }),
    config: ({ chain, usdc, facilitator }) => {
      payTo = chain.newAccount().address;
      // A time_limit: upto sells only a plan whose sessions end within the authorization's window (offerFor).
      return (
        bytesPlan(usdc) +
        "\toption time_limit '3600'\n" +
        uptoSection({ facilitatorUrl: facilitator.url, payTo, timeoutS: 5 })
      );
    },
  });
  const { chain, usdc, lab, base } = rig;
  lab.portal.addClient(LAN_MAC, '127.0.0.1');
  // The offer the daemon makes once the facilitator's /supported lists upto (its 402's `accepts`).
  let offer: Record<string, unknown> | undefined;
  await lab.waitFor(
    async () => {
      const r = await fetch(`${base}/buy?plan=${PLAN.id}&steps=${PLAN.steps}`);
      await r.arrayBuffer();
      const header = r.headers.get('payment-required');
      const accepts = header
        ? (JSON.parse(Buffer.from(header, 'base64').toString()) as { accepts: Array<Record<string, unknown>> }).accepts
        : [];
      offer = accepts.find((a) => a.scheme === 'upto');
      return offer !== undefined;
    },
    60_000,
    'upto offered',
  );

  async function signed(over: Record<string, unknown> = {}): Promise<RigPayment> {
    const buyer = await newPermit2Buyer(chain, usdc, FUNDS);
    const accepted = { ...offer!, ...over };
    const built = await new UptoEvmScheme(buyer as never).createPaymentPayload(2, accepted as never);
    const auth = (built.payload as { permit2Authorization: { nonce: string } }).permit2Authorization;
    return {
      fields: { method: 'upto', payload: { x402Version: 2, accepted, payload: built.payload } },
      reference: `${buyer.address.toLowerCase()}:${BigInt(auth.nonce).toString()}`,
      buyer: buyer.address,
    };
  }

  return {
    lab,
    rules: { ceiling: true, refund: false, pending: false },
    replayCodes: ['ERR_PAYMENT_REPLAYED', 'ERR_UPTO_REPLAYED'],
    plan: PLAN,
    payment: () => signed(),
    // Paying someone else: witness.to is not pay_to, refused by the local check.
    badPayment: () => signed({ payTo: chain.newAccount().address }),
    money: async (p) => [await usdc.balanceOf(p.buyer as Address), await usdc.balanceOf(payTo)],
    settledAfterEnd: (p) =>
      lab.waitFor(
        () =>
          ['settled', 'failed', 'unconfirmed'].includes(
            String(stateRecord(lab, 'upto.json', 'reference', p.reference!)?.state),
          ),
        60_000,
        `the upto settle of ${p.reference}`,
      ),
    close: () => rig.close(),
  };
}
