/**
 * x402 `batch-settlement` on the test chain: the test contracts of BatchSettlement.sol (written from the scheme's
 * spec) placed at the canonical addresses @x402/evm hard-codes, since its facilitator and client call nothing else:
 * x402BatchSettlement 0x4020…0003, ERC3009DepositCollector 0x4020…0004, and Multicall3 (0xcA11…), which anvil does
 * not carry and @x402/evm reads channel state through. Each is deployed normally, then its runtime code copied to
 * the canonical address with anvil_setCode (the contracts keep no constructor state, so the copy behaves the same).
 */
import type { Address, Hex } from 'viem';
import { compileTestContracts, type Artifact } from './solc.ts';
import type { TestChain } from './index.ts';

export const BATCH_SETTLEMENT_ADDRESS: Address = '0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003';
export const ERC3009_DEPOSIT_COLLECTOR_ADDRESS: Address = '0x4020806089470a89826cB9fB1f4059150b550004';
export const MULTICALL3_ADDRESS: Address = '0xcA11bde05977b3631167028862bE2a173976CA11';

export interface BatchStack {
  settlement: Address;
  collector: Address;
  /** The settlement contract's ABI as compiled (the same selectors as @x402/evm's batchSettlementABI). */
  abi: Artifact['abi'];
}

async function placeAt(chain: TestChain, artifact: Artifact, target: Address): Promise<void> {
  const deployed = await chain.deploy(artifact);
  const code = await chain.publicClient.getCode({ address: deployed });
  if (!code || code === '0x') throw new Error(`no code at ${deployed}`);
  await chain.publicClient.request({ method: 'anvil_setCode' as never, params: [target, code as Hex] as never });
}

export async function deployBatchStack(chain: TestChain): Promise<BatchStack> {
  const a = compileTestContracts('BatchSettlement.sol');
  const need = (name: string): Artifact => {
    const x = a[name];
    if (!x) throw new Error(`${name} missing`);
    return x;
  };
  await placeAt(chain, need('TestBatchSettlement'), BATCH_SETTLEMENT_ADDRESS);
  await placeAt(chain, need('TestERC3009DepositCollector'), ERC3009_DEPOSIT_COLLECTOR_ADDRESS);
  await placeAt(chain, need('TestMulticall3'), MULTICALL3_ADDRESS);
  return {
    settlement: BATCH_SETTLEMENT_ADDRESS,
    collector: ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    abi: need('TestBatchSettlement').abi,
  };
}
