/**
 * x402 `upto` on the test chain: the test contracts of Upto.sol (written from the scheme's spec) placed at the
 * canonical addresses @x402/evm hard-codes (its client signs for them, its facilitator calls them): Permit2
 * 0x0000…22D473030F116dDEE9F6B43aC78BA3 and x402UptoPermit2Proxy 0x4020…0002. Deployed normally, then the runtime code
 * copied with anvil_setCode (no constructor state, no immutables: the copy behaves the same). Multicall3 too (from
 * BatchSettlement.sol): @x402/evm's facilitator reads balance and allowance through it to say why a settle would fail.
 */
import { maxUint256, type Address, type Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { compileTestContracts, type Artifact } from './solc.ts';
import { MULTICALL3_ADDRESS } from './batch.ts';
import type { TestChain, TestToken } from './index.ts';

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
  const need = (name: string): Artifact => {
    const x = a[name];
    if (!x) throw new Error(`${name} missing`);
    return x;
  };
  await placeAt(chain, need('TestPermit2'), PERMIT2_ADDRESS);
  await placeAt(chain, need('TestUptoPermit2Proxy'), UPTO_PROXY_ADDRESS);
  const multicall = compileTestContracts('BatchSettlement.sol')['TestMulticall3'];
  if (!multicall) throw new Error('TestMulticall3 missing');
  await placeAt(chain, multicall, MULTICALL3_ADDRESS);
  return {
    permit2: PERMIT2_ADDRESS,
    proxy: UPTO_PROXY_ADDRESS,
    permit2Abi: need('TestPermit2').abi,
    proxyAbi: need('TestUptoPermit2Proxy').abi,
  };
}

/**
 * An upto buyer: `funds` of `token`, ETH for gas, and Permit2 approved for all of it (the upto client signs Permit2
 * transfers).
 */
export async function newPermit2Buyer(chain: TestChain, token: TestToken, funds: bigint): Promise<PrivateKeyAccount> {
  const wallet = chain.newAccount();
  await token.mint(wallet.address, funds);
  await chain.fund(wallet.address);
  const hash = await chain.wallet(wallet).writeContract({
    address: token.address,
    abi: token.abi,
    functionName: 'approve',
    args: [PERMIT2_ADDRESS, maxUint256],
  });
  await chain.publicClient.waitForTransactionReceipt({ hash });
  return wallet;
}
