/**
 * The real daemon selling x402 `batch-settlement` on its LAN endpoint, against @x402/evm's own facilitator on anvil
 * (the canonical contracts of batch.ts), on the shared rig (daemon-rig.ts), for the pay page's end-to-end tests
 * (test/http/batch-page-chain.test.ts, batch-page-refund-chain.test.ts). One plan, `wifi`: 60 s steps at
 * `stepPrice`, USDC (6 decimals) on eip155:84532; the client at `mac` is 127.0.0.1.
 */
import type { Address, Hex } from 'viem';
import type { TestChain, TestToken } from './index.ts';
import { BATCH_SETTLEMENT_ADDRESS, deployBatchStack, type BatchStack } from './batch.ts';
import type { TestFacilitator } from './facilitator.ts';
import type { HoldingProxy } from './holding-proxy.ts';
import { RIG_NETWORK, receiverAuthorizer, startChainDaemon } from './daemon-rig.ts';
import type { DaemonLab } from '../daemon/harness.ts';
import { x402Section } from '../helpers/uci-sections.ts';

export const BATCH_NET = RIG_NETWORK;

export interface BatchLabOptions {
  mac: string;
  stepPrice: bigint;
  /** batch_settlement.refund */
  refund: 'at-end' | 'idle' | 'on-request';
  /** The daemon talks to the facilitator through a holding proxy (holding-proxy.ts): `proxy`. */
  holdingProxy?: boolean;
}

export interface BatchLab {
  chain: TestChain;
  usdc: TestToken;
  stack: BatchStack;
  facilitator: TestFacilitator;
  /** With `holdingProxy`. */
  proxy: HoldingProxy | undefined;
  receiver: Address;
  lab: DaemonLab;
  /** The LAN endpoint, http://127.0.0.1:port */
  base: string;
  /** The facilitator's advertised receiverAuthorizer (GET /supported), as a server configures it. */
  authorizer(): Promise<Address>;
  /** [balance, totalClaimed] of a channel on chain. */
  channel(id: Hex): Promise<[bigint, bigint]>;
  close(): Promise<void>;
}

export async function startBatchLab(o: BatchLabOptions): Promise<BatchLab> {
  const accounts: { receiver?: Address } = {};
  const rig = await startChainDaemon({
    deploy: deployBatchStack,
    facilitator: (chain) => ({ batchSettlement: { authorizer: chain.newAccount() } }),
    clients: { [o.mac]: '127.0.0.1' },
    holdingProxy: o.holdingProxy ?? false,
    config: async ({ chain, usdc, facilitator, proxy }) => {
      accounts.receiver = chain.newAccount().address;
      return (
        `
config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '${o.stepPrice}'
\toption asset '${usdc.address}'
\toption currency 'USDC'
\toption decimals '6'
\toption max_steps '100'

config batch_settlement 'batch_settlement'
\toption enabled '1'
\toption facilitator_url '${(proxy ?? facilitator).url}'
\toption network '${BATCH_NET}'
\toption receiver '${accounts.receiver}'
\toption receiver_authorizer '${await receiverAuthorizer(facilitator)}'
\toption withdraw_delay '900'
\toption refund '${o.refund}'
\toption token_name 'USDC'
\toption token_version '2'
` + x402Section({ facilitatorUrl: facilitator.url, payTo: chain.newAccount().address })
      );
    },
  });
  const { chain, usdc, deployed: stack, facilitator, proxy, lab, base } = rig;
  return {
    chain,
    usdc,
    stack,
    facilitator,
    proxy,
    receiver: accounts.receiver!,
    lab,
    base,
    authorizer: () => receiverAuthorizer(facilitator),
    channel: async (id) => {
      const [balance, totalClaimed] = (await chain.publicClient.readContract({
        address: BATCH_SETTLEMENT_ADDRESS,
        abi: stack.abi,
        functionName: 'channels',
        args: [id],
      })) as [bigint, bigint];
      return [balance, totalClaimed];
    },
    close: rig.close,
  };
}
