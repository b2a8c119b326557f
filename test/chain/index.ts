/**
 * The tests' chain kit: a real anvil, a USDC-like EIP-3009 token compiled from TestUSDC.sol, accounts funded with ETH
 * and tokens, and EIP-3009 authorizations signed with viem exactly as a wallet signs them.
 *
 *   const chain = await startChain({ chainId: 84532 });
 *   const usdc = await chain.deployToken({ name: 'USDC', version: '2' });
 *   const buyer = chain.newAccount(); await chain.fund(buyer.address); await usdc.mint(buyer.address, 5_000_000n);
 *   const { authorization, signature } = await signAuthorization(buyer, usdc, { to: payTo, value: 10_000n });
 *   ...; await chain.stop();
 */
import { randomBytes } from 'node:crypto';
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  getAddress,
  http,
  parseEther,
  parseSignature,
  toHex,
  type Abi,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type WalletClient,
  type Transport,
  type Account,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { startAnvil, type AnvilProcess } from './anvil.ts';
import { compileTestContracts, type Artifact } from './solc.ts';
import { receiptOf, type ReceiptWait } from './receipt.ts';

export { compileSolidity, compileTestContracts, type Artifact } from './solc.ts';
export { startAnvil, anvilBinary } from './anvil.ts';

/** anvil's first well-known dev key (mnemonic "test test … junk"): deploys and mints. Never holds real money. */
export const DEPLOYER_KEY: Hex = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

export interface TokenOptions {
  /** EIP-712 domain name: "USD Coin" on Base, "USDC" on Base Sepolia. */
  name?: string;
  version?: string;
  symbol?: string;
}

export interface TestToken {
  address: Address;
  name: string;
  version: string;
  decimals: 6;
  chainId: number;
  abi: Abi;
  balanceOf(owner: Address): Promise<bigint>;
  mint(to: Address, amount: bigint): Promise<void>;
  /** true once the authorization `nonce` of `authorizer` was used (or canceled) on chain. */
  authorizationState(authorizer: Address, nonce: Hex): Promise<boolean>;
}

export interface TestChain {
  rpcUrl: string;
  chainId: number;
  chain: Chain;
  publicClient: PublicClient<Transport, Chain>;
  deployer: PrivateKeyAccount;
  /** A wallet client for `account` (retryCount 0: a revert is an answer, not a reason to retry). */
  wallet(account: Account): WalletClient<Transport, Chain, Account>;
  /** A fresh random account (not funded). */
  newAccount(): PrivateKeyAccount;
  /** Sets `address`'s ETH balance (default 10 ETH) so it can pay gas. */
  fund(address: Address, eth?: bigint): Promise<void>;
  /** Deploys `artifact` from the deployer (or `from`) and waits for the receipt. */
  deploy(artifact: Artifact, args?: readonly unknown[], from?: Account): Promise<Address>;
  deployToken(options?: TokenOptions): Promise<TestToken>;
  /** Seconds of the latest block. */
  now(): Promise<bigint>;
  /** Moves chain time forward by `seconds` and mines a block. */
  increaseTime(seconds: number): Promise<void>;
  snapshot(): Promise<Hex>;
  revert(id: Hex): Promise<void>;
  anvil: AnvilProcess;
  stop(): Promise<void>;
}

export interface ChainOptions {
  /** Default 31337; 8453 / 84532 to look like Base / Base Sepolia to code that checks the chain id. */
  chainId?: number;
  anvilArgs?: string[];
}

export async function startChain(options: ChainOptions = {}): Promise<TestChain> {
  const chainId = options.chainId ?? 31337;
  const anvil = await startAnvil({ chainId, ...(options.anvilArgs ? { args: options.anvilArgs } : {}) });
  const chain = defineChain({
    id: chainId,
    name: `anvil-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [anvil.rpcUrl] } },
  });
  const transport = http(anvil.rpcUrl, { retryCount: 0 });
  // Every receipt wait through this client asks for the receipt itself (receipt.ts says why).
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 50 }).extend((client) => ({
    waitForTransactionReceipt: (args: ReceiptWait) => receiptOf(client, args),
  })) as unknown as PublicClient<Transport, Chain>;
  const deployer = privateKeyToAccount(DEPLOYER_KEY);
  const wallet = (account: Account): WalletClient<Transport, Chain, Account> =>
    createWalletClient({ chain, transport, account, pollingInterval: 50 });
  const rpc = (method: string, params: unknown[] = []): Promise<unknown> =>
    publicClient.request({ method: method as never, params: params as never });

  async function deploy(artifact: Artifact, args: readonly unknown[] = [], from: Account = deployer): Promise<Address> {
    const hash = await wallet(from).deployContract({
      abi: artifact.abi,
      bytecode: artifact.bytecode,
      args: args as never,
    });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error(`deploy failed: ${hash}`);
    return receipt.contractAddress;
  }

  async function deployToken(opts: TokenOptions = {}): Promise<TestToken> {
    const name = opts.name ?? 'USD Coin';
    const version = opts.version ?? '2';
    const artifact = compileTestContracts('TestUSDC.sol')['TestUSDC'];
    if (!artifact) throw new Error('TestUSDC missing from the compiler output');
    const address = await deploy(artifact, [name, version, opts.symbol ?? 'USDC']);
    const abi = artifact.abi;
    return {
      address,
      name,
      version,
      decimals: 6,
      chainId,
      abi,
      balanceOf: async (owner) =>
        (await publicClient.readContract({ address, abi, functionName: 'balanceOf', args: [owner] })) as bigint,
      mint: async (to, amount) => {
        const hash = await wallet(deployer).writeContract({ address, abi, functionName: 'mint', args: [to, amount] });
        const receipt = await publicClient.waitForTransactionReceipt({ hash });
        if (receipt.status !== 'success') throw new Error(`mint reverted: ${hash}`);
      },
      authorizationState: async (authorizer, nonce) =>
        (await publicClient.readContract({
          address,
          abi,
          functionName: 'authorizationState',
          args: [authorizer, nonce],
        })) as boolean,
    };
  }

  return {
    rpcUrl: anvil.rpcUrl,
    chainId,
    chain,
    publicClient,
    deployer,
    wallet,
    deploy,
    deployToken,
    anvil,
    newAccount: () => privateKeyToAccount(generatePrivateKey()),
    fund: async (address, eth = parseEther('10')) => {
      await rpc('anvil_setBalance', [address, toHex(eth)]);
    },
    now: async () => (await publicClient.getBlock()).timestamp,
    increaseTime: async (seconds) => {
      await rpc('evm_increaseTime', [seconds]);
      await rpc('evm_mine');
    },
    snapshot: async () => (await rpc('evm_snapshot')) as Hex,
    revert: async (id) => {
      if (!(await rpc('evm_revert', [id]))) throw new Error(`evm_revert ${id} refused`);
    },
    stop: () => anvil.stop(),
  };
}

/** The EIP-3009 authorization as x402 carries it: every field a string (decimal integers, hex nonce). */
export interface WireAuthorization {
  from: Address;
  to: Address;
  value: string;
  validAfter: string;
  validBefore: string;
  nonce: Hex;
}

export interface AuthorizationOptions {
  to: Address;
  value: bigint;
  /** Unix seconds; default now − 600 (as x402 clients do, tolerating clock skew). */
  validAfter?: bigint;
  /** Unix seconds; default now + 300 (an x402 client uses now + the offer's maxTimeoutSeconds). */
  validBefore?: bigint;
  /** 32 bytes hex; default random. */
  nonce?: Hex;
  /** TransferWithAuthorization (x402 exact, default) or ReceiveWithAuthorization (escrow deposits). */
  primaryType?: 'TransferWithAuthorization' | 'ReceiveWithAuthorization';
  /** Override the domain (to forge a wrong-domain signature). */
  domain?: Partial<{ name: string; version: string; chainId: number; verifyingContract: Address }>;
}

const AUTH_FIELDS = [
  { name: 'from', type: 'address' },
  { name: 'to', type: 'address' },
  { name: 'value', type: 'uint256' },
  { name: 'validAfter', type: 'uint256' },
  { name: 'validBefore', type: 'uint256' },
  { name: 'nonce', type: 'bytes32' },
] as const;

export function randomNonce(): Hex {
  return `0x${randomBytes(32).toString('hex')}`;
}

/** Signs an EIP-3009 authorization for `token` with viem's signTypedData, as a wallet would. */
export async function signAuthorization(
  account: PrivateKeyAccount,
  token: Pick<TestToken, 'address' | 'name' | 'version' | 'chainId'>,
  options: AuthorizationOptions,
): Promise<{ authorization: WireAuthorization; signature: Hex }> {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const message = {
    from: account.address,
    to: getAddress(options.to),
    value: options.value,
    validAfter: options.validAfter ?? now - 600n,
    validBefore: options.validBefore ?? now + 300n,
    nonce: options.nonce ?? randomNonce(),
  };
  const primaryType = options.primaryType ?? 'TransferWithAuthorization';
  const signature = await account.signTypedData({
    domain: {
      name: token.name,
      version: token.version,
      chainId: token.chainId,
      verifyingContract: token.address,
      ...options.domain,
    },
    types: { [primaryType]: AUTH_FIELDS } as { TransferWithAuthorization: typeof AUTH_FIELDS },
    primaryType: primaryType as 'TransferWithAuthorization',
    message,
  });
  return {
    authorization: {
      from: message.from,
      to: message.to,
      value: message.value.toString(),
      validAfter: message.validAfter.toString(),
      validBefore: message.validBefore.toString(),
      nonce: message.nonce,
    },
    signature,
  };
}

/**
 * The buyer's way out of an authorization it signed: signs EIP-3009's CancelAuthorization(authorizer, nonce) and
 * sends cancelAuthorization from its own account (which needs ETH for gas). The nonce is then used on chain
 * (authorizationState = true) and AuthorizationCanceled is emitted, but no token moves.
 */
export async function cancelAuthorization(
  chain: TestChain,
  token: TestToken,
  authorizer: PrivateKeyAccount,
  nonce: Hex,
): Promise<Hex> {
  const signature = await authorizer.signTypedData({
    domain: { name: token.name, version: token.version, chainId: token.chainId, verifyingContract: token.address },
    types: {
      CancelAuthorization: [
        { name: 'authorizer', type: 'address' },
        { name: 'nonce', type: 'bytes32' },
      ],
    },
    primaryType: 'CancelAuthorization',
    message: { authorizer: authorizer.address, nonce },
  });
  const { r, s, v, yParity } = parseSignature(signature);
  const hash = await chain.wallet(authorizer).writeContract({
    address: token.address,
    abi: token.abi,
    functionName: 'cancelAuthorization',
    args: [authorizer.address, nonce, Number(v ?? BigInt(yParity + 27)), r, s],
  });
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`cancelAuthorization reverted: ${hash}`);
  return hash;
}

/** Submits an authorization with the token's transferWithAuthorization(…, bytes signature) from `sender`. */
export async function submitAuthorization(
  chain: TestChain,
  token: TestToken,
  sender: Account,
  auth: { authorization: WireAuthorization; signature: Hex },
): Promise<Hex> {
  const a = auth.authorization;
  const hash = await chain.wallet(sender).writeContract({
    address: token.address,
    abi: token.abi,
    functionName: 'transferWithAuthorization',
    args: [a.from, a.to, BigInt(a.value), BigInt(a.validAfter), BigInt(a.validBefore), a.nonce, auth.signature],
  });
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`transferWithAuthorization reverted: ${hash}`);
  return hash;
}
