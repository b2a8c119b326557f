/**
 * The PaymentMethod suite's rig for x402 `batch-settlement`: the scheme's contracts at their canonical addresses
 * (test/chain/BatchSettlement.sol), @x402/evm's own facilitator (it signs claims and refunds as the receiver's
 * authorizer) behind the holding proxy, the daemon with refund at-end. A payment is @x402/evm's own client's deposit
 * payload on a fresh channel: a deposit into the channel and a voucher for the plan's price (its ceiling). The end
 * charges the metered steps, claims them and refunds the rest.
 */
import type { Address, Hex } from 'viem';
import { computeChannelId, createBatchSettlementEIP3009DepositPayload } from '@x402/evm/batch-settlement/client';
import { BATCH_SETTLEMENT_ADDRESS, deployBatchStack } from '../../chain/batch.ts';
import { receiverAuthorizer } from '../../chain/daemon-rig.ts';
import { batchSettlementSection } from '../../helpers/uci-sections.ts';
import type { MethodRig, RigPayment } from '../method-suite.ts';
import { bytesPlan, newBuyer, PLAN, PRICE, startMethodDaemon } from './chain-common.ts';

const NET = 'eip155:84532';
const DEPOSIT = 1_000_000n;

export async function batchSettlementRig(): Promise<MethodRig> {
  let receiver: Address = '0x0000000000000000000000000000000000000000';
  let authorizer: Address = receiver;
  const rig = await startMethodDaemon({
    deploy: deployBatchStack,
    holdingProxy: true,
    facilitator: (chain) => ({ batchSettlement: { authorizer: chain.newAccount() } }),
    config: async ({ chain, usdc, facilitator, proxy }) => {
      receiver = chain.newAccount().address;
      authorizer = await receiverAuthorizer(facilitator);
      return (
        bytesPlan(usdc) +
        batchSettlementSection({
          facilitatorUrl: proxy!.url,
          receiver,
          receiverAuthorizer: authorizer,
          refund: 'at-end',
          timeoutS: 5,
        })
      );
    },
  });
  const { chain, usdc, lab, deployed: stack } = rig;

  async function deposit(o: { receiver?: Address } = {}): Promise<RigPayment> {
    const buyer = await newBuyer(chain, usdc);
    const voucherKey = chain.newAccount();
    const requirements = {
      scheme: 'batch-settlement',
      network: NET,
      amount: PRICE.toString(),
      asset: usdc.address,
      payTo: o.receiver ?? receiver,
      maxTimeoutSeconds: 3600,
      extra: { receiverAuthorizer: authorizer, withdrawDelay: 900, name: 'USDC', version: '2' },
    };
    const config = {
      payer: buyer.address,
      payerAuthorizer: voucherKey.address,
      receiver: o.receiver ?? receiver,
      receiverAuthorizer: authorizer,
      token: usdc.address,
      withdrawDelay: 900,
      salt: `0x${'0'.repeat(64)}` as Hex,
    };
    const built = await createBatchSettlementEIP3009DepositPayload(
      buyer as never,
      2,
      requirements as never,
      config as never,
      DEPOSIT.toString(),
      PRICE.toString(),
      voucherKey as never,
    );
    const channelId = computeChannelId(config as never, NET).toLowerCase() as Hex;
    return {
      fields: {
        method: 'batch-settlement',
        payload: { x402Version: 2, accepted: requirements, payload: built.payload },
      },
      reference: `${channelId}:${PRICE}`,
      buyer: buyer.address,
      channelId,
    };
  }

  /** The channel as the ubus `batch_channel` shows it; null: unknown. */
  async function channel(p: RigPayment): Promise<Record<string, any> | null> {
    const r = await lab.callStatus('batch_channel', { channel: p.channelId as string });
    return r.status === 0 ? (r.data!.channel as Record<string, any>) : null;
  }

  return {
    lab,
    rules: { ceiling: true, refund: true, pending: true },
    // A replayed voucher is not the channel's next ceiling (docs/errors.md); while its session runs, the channel is
    // busy.
    replayCodes: ['ERR_PAYMENT_REPLAYED', 'ERR_BATCH_CUMULATIVE_MISMATCH', 'ERR_BATCH_CHANNEL_BUSY'],
    pendingCodes: ['ERR_BATCH_DEPOSIT_PENDING', 'ERR_PAYMENT_IN_PROGRESS'],
    plan: PLAN,
    payment: () => deposit(),
    // A channel to another receiver: not this router's (ERR_BATCH_CHANNEL_MISMATCH), refused before anything moves.
    badPayment: () => deposit({ receiver: chain.newAccount().address }),
    money: async (p) => {
      const [balance, claimed] = (await chain.publicClient.readContract({
        address: BATCH_SETTLEMENT_ADDRESS,
        abi: stack.abi,
        functionName: 'channels',
        args: [p.channelId as Hex],
      })) as [bigint, bigint];
      return {
        buyer: await usdc.balanceOf(p.buyer as Address),
        receiver: await usdc.balanceOf(receiver),
        balance,
        claimed,
      };
    },
    settledAfterEnd: (p) =>
      lab.waitFor(
        async () => {
          const c = await channel(p);
          return c !== null && c.session_open === false && c.refund?.state === 'done';
        },
        90_000,
        `the charge claimed and the rest refunded on ${p.channelId}`,
      ),
    holdAuthorize: () => rig.proxy!.hold(),
    close: () => rig.close(),
  };
}
