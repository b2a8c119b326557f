/**
 * x402 `upto` on the test chain: the test contracts of Upto.sol (written from the scheme's spec) placed at the
 * canonical addresses @x402/evm hard-codes (its client signs for them, its facilitator calls them): Permit2
 * 0x0000…22D473030F116dDEE9F6B43aC78BA3 and x402UptoPermit2Proxy 0x4020…0002. Deployed normally, then the runtime code
 * copied with anvil_setCode (no constructor state, no immutables: the copy behaves the same). Multicall3 too (from
 * BatchSettlement.sol): @x402/evm's facilitator reads balance and allowance through it to say why a settle would fail.
 */
import type { Address, Hex } from 'viem';
import { compileTestContracts, type Artifact } from './solc.ts';
import { MULTICALL3_ADDRESS } from './batch.ts';
import type { TestChain } from './index.ts';

export const PERMIT2_ADDRESS: Address = '0x000000000022D473030F116dDEE9F6B43aC78BA3';
export const UPTO_PROXY_ADDRESS: Address = '0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002';

export interface UptoStack {
  permit2: Address;
  proxy: Address;
  permit2Abi: Artifact['abi'];
  proxyAbi: Artifact['abi'];
}

async function placeAt(chain: TestChain, artifact: Artifact, target: Address): Promise<void> {
  const deployed = await chain.deploy(artifact);
  const code = await chain.publicClient.getCode({ address: deployed });
  if (!code || code === '0x') throw new Error(`no code at ${deployed}`);
  await chain.publicClient.request({ method: 'anvil_setCode' as never, params: [target, code as Hex] as never });
}

export async function deployUptoStack(chain: TestChain): Promise<UptoStack> {
  const a = compileTestContracts('Upto.sol');
  const need = (name: string): Artifact => { const x = a[name]; if (!x) throw new Error(`${name} missing`); return x; };
  await placeAt(chain, need('TestPermit2'), PERMIT2_ADDRESS);
  await placeAt(chain, need('TestUptoPermit2Proxy'), UPTO_PROXY_ADDRESS);
  const multicall = compileTestContracts('BatchSettlement.sol')['TestMulticall3'];
  if (!multicall) throw new Error('TestMulticall3 missing');
  await placeAt(chain, multicall, MULTICALL3_ADDRESS);
  return { permit2: PERMIT2_ADDRESS, proxy: UPTO_PROXY_ADDRESS, permit2Abi: need('TestPermit2').abi, proxyAbi: need('TestUptoPermit2Proxy').abi };
}
