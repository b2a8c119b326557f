/**
 * The real daemon selling x402 `batch-settlement` on its LAN endpoint, against @x402/evm's own facilitator on anvil
 * (the canonical contracts of batch.ts): the set-up of the LAN endpoint's test (test/http/batch-settlement-http.test.ts,
 * which still has its own copy) for the pay page's end-to-end test (test/http/batch-page-chain.test.ts). One plan, `wifi`: 60 s steps at
 * `stepPrice`, USDC (6 decimals) on eip155:84532; the client at `mac` is 127.0.0.1.
 */
import type { Address, Hex } from 'viem';
import { startChain, type TestChain, type TestToken } from './index.ts';
import { BATCH_SETTLEMENT_ADDRESS, deployBatchStack, type BatchStack } from './batch.ts';
import { startFacilitator, type TestFacilitator } from './facilitator.ts';
import { DaemonLab } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection, x402Section } from '../helpers/uci-sections.ts';

export const BATCH_NET = 'eip155:84532';

export interface BatchLabOptions {
  mac: string;
  stepPrice: bigint;
  /** batch_settlement.refund */
  refund: 'at-end' | 'idle' | 'on-request';
}

export interface BatchLab {
  chain: TestChain;
  usdc: TestToken;
  stack: BatchStack;
  facilitator: TestFacilitator;
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
  const chain = await startChain({ chainId: 84532 });
  const usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  const stack = await deployBatchStack(chain);
  const facilitator = await startFacilitator(chain, { batchSettlement: { authorizer: chain.newAccount() } });
  const receiver = chain.newAccount().address;
  const authorizer = async (): Promise<Address> => {
    const s = await (await fetch(`${facilitator.url}/supported`)).json() as { kinds: Array<{ scheme: string; extra?: { receiverAuthorizer?: Address } }> };
    const kind = s.kinds.find((k) => k.scheme === 'batch-settlement');
    if (!kind?.extra?.receiverAuthorizer) throw new Error('no receiverAuthorizer in /supported');
    return kind.extra.receiverAuthorizer;
  };
  const port = await freePort();
  const lab = await DaemonLab.create({ pollInterval: 0.3, portalSocket: true, extraConfig: `
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
\toption facilitator_url '${facilitator.url}'
\toption network '${BATCH_NET}'
\toption receiver '${receiver}'
\toption receiver_authorizer '${await authorizer()}'
\toption withdraw_delay '900'
\toption refund '${o.refund}'
\toption token_name 'USDC'
\toption token_version '2'
` + x402Section({ facilitatorUrl: facilitator.url, payTo: chain.newAccount().address }) + httpSection(port) });
  lab.portal.addClient(o.mac, '127.0.0.1');
  await lab.startDaemon();
  return {
    chain, usdc, stack, facilitator, receiver, lab, base: `http://127.0.0.1:${port}`, authorizer,
    channel: async (id) => {
      const [balance, totalClaimed] = await chain.publicClient.readContract({ address: BATCH_SETTLEMENT_ADDRESS, abi: stack.abi, functionName: 'channels', args: [id] }) as [bigint, bigint];
      return [balance, totalClaimed];
    },
    close: async () => {
      await lab.close();
      await facilitator.stop();
      await chain.stop();
    },
  };
}
