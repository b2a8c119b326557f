/**
 * x402 `batch-settlement` on EVM, the server's side of the wire (spec: x402-foundation/x402
 * specs/schemes/batch-settlement/scheme_batch_settlement_evm.md). Pure: payload syntax, the channel id, the voucher's
 * EIP-712 digest and its local verification, and the typed data sluice signs as a receiver authorizer (ClaimBatch,
 * Refund). What a payload is worth against sluice's channel state is the payment method's business.
 *
 *   payload: {x402Version: 2, accepted: {scheme: "batch-settlement", network, amount, asset, payTo, extra},
 *             payload: {type: "deposit" | "voucher", channelConfig,
 *                       voucher: {channelId, maxClaimableAmount, signature},
 *                       deposit?: {amount, authorization: {erc3009Authorization | permit2Authorization}}}}
 */
import { SluiceError } from '../errors.ts';
import { decodeV2Envelope, type Address, type Hex } from './payload.ts';
import { isLowS } from './signature.ts';
import { evm, loadEvm } from './evm-loader.ts';

export const BATCH_SETTLEMENT_SCHEME = 'batch-settlement';
/** The canonical x402BatchSettlement contract (CREATE2, the same on every chain): the EIP-712 verifying contract. */
export const BATCH_SETTLEMENT_CONTRACT: Address = '0x4020074e9df2ce1dee5a9c1b5c3f541d02a10003';
/** The spec's bounds on a channel's withdrawDelay (seconds): 15 minutes to 30 days. */
export const MIN_WITHDRAW_DELAY = 900;
export const MAX_WITHDRAW_DELAY = 2_592_000;
const ZERO_ADDRESS: Address = '0x0000000000000000000000000000000000000000';
const UINT128_MAX = (1n << 128n) - 1n;

export interface ChannelConfig {
  payer: Address;
  payerAuthorizer: Address;
  receiver: Address;
  receiverAuthorizer: Address;
  token: Address;
  withdrawDelay: number;
  salt: Hex;
}

export interface SignedVoucher {
  channelId: Hex;
  maxClaimableAmount: bigint;
  signature: Hex;
}

export interface BatchPayment {
  /** `refund`: the customer's own refund request (a voucher at the charged amount), only where the caller allows it. */
  type: 'deposit' | 'voucher' | 'refund';
  network: string;
  config: ChannelConfig;
  voucher: SignedVoucher;
  /** Deposit payloads: what the deposit adds to the channel. */
  depositAmount: bigint | null;
  /** Refund payloads: the amount asked for (absent: all that is left). */
  refundAmount?: bigint;
  /** The payload as received: forwarded to the facilitator untouched. */
  raw: Record<string, unknown>;
}

const CHANNEL_CONFIG_TYPES = {
  ChannelConfig: [
    { name: 'payer', type: 'address' },
    { name: 'payerAuthorizer', type: 'address' },
    { name: 'receiver', type: 'address' },
    { name: 'receiverAuthorizer', type: 'address' },
    { name: 'token', type: 'address' },
    { name: 'withdrawDelay', type: 'uint40' },
    { name: 'salt', type: 'bytes32' },
  ],
} as const;
const VOUCHER_TYPES = {
  Voucher: [
    { name: 'channelId', type: 'bytes32' },
    { name: 'maxClaimableAmount', type: 'uint128' },
  ],
} as const;
export const REFUND_TYPES = {
  Refund: [
    { name: 'channelId', type: 'bytes32' },
    { name: 'nonce', type: 'uint256' },
    { name: 'amount', type: 'uint128' },
  ],
} as const;
export const CLAIM_BATCH_TYPES = {
  ClaimBatch: [{ name: 'claims', type: 'ClaimEntry[]' }],
  ClaimEntry: [
    { name: 'channelId', type: 'bytes32' },
    { name: 'maxClaimableAmount', type: 'uint128' },
    { name: 'totalClaimed', type: 'uint128' },
  ],
} as const;

/** The scheme's EIP-712 domain on `chainId`. */
export function batchDomain(chainId: number): {
  name: string;
  version: string;
  chainId: number;
  verifyingContract: Address;
} {
  return { name: 'x402 Batch Settlement', version: '1', chainId, verifyingContract: BATCH_SETTLEMENT_CONTRACT };
}

/** channelId = the EIP-712 hash of the config under the scheme's domain (bound to the chain and the contract). */
export function channelIdOf(config: ChannelConfig, chainId: number): Hex {
  return evm()
    .hashTypedData({
      domain: batchDomain(chainId),
      types: CHANNEL_CONFIG_TYPES,
      primaryType: 'ChannelConfig',
      message: { ...config, withdrawDelay: config.withdrawDelay },
    })
    .toLowerCase() as Hex;
}

export function voucherDigest(channelId: Hex, maxClaimableAmount: bigint, chainId: number): Hex {
  return evm().hashTypedData({
    domain: batchDomain(chainId),
    types: VOUCHER_TYPES,
    primaryType: 'Voucher',
    message: { channelId, maxClaimableAmount },
  });
}

function invalid(message: string): never {
  throw new SluiceError('ERR_BATCH_PAYLOAD_INVALID', `batch-settlement payload: ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function address(v: unknown, field: string): Address {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(v)) invalid(`${field} must be a 0x address`);
  return (v as string).toLowerCase() as Address;
}

function bytes32(v: unknown, field: string): Hex {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(v)) invalid(`${field} must be 32 bytes hex`);
  return (v as string).toLowerCase() as Hex;
}

function uint128(v: unknown, field: string): bigint {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,38})$/.test(v)) invalid(`${field} must be a decimal integer string`);
  const n = BigInt(v as string);
  if (n > UINT128_MAX) invalid(`${field} exceeds uint128`);
  return n;
}

/**
 * The payload object, or the base64 JSON a PAYMENT-SIGNATURE header carries; shape and syntax only. `types`: the
 * payload types the caller takes (a purchase: deposit or voucher; the refund request: refund).
 */
export function parseBatchPayment(
  input: unknown,
  types: ReadonlyArray<BatchPayment['type']> = ['deposit', 'voucher'],
): BatchPayment {
  const { raw, accepted: acc } = decodeV2Envelope(input, invalid);
  if (acc.scheme !== BATCH_SETTLEMENT_SCHEME) {
    throw new SluiceError(
      'ERR_X402_SCHEME_UNSUPPORTED',
      `scheme ${JSON.stringify(acc.scheme)} is not ${BATCH_SETTLEMENT_SCHEME}`,
    );
  }
  if (typeof acc.network !== 'string') invalid('accepted.network is missing');
  const p = raw.payload;
  if (!isRecord(p)) invalid('payload is missing');
  const body = p as Record<string, unknown>;
  if (!types.includes(body.type as BatchPayment['type']))
    invalid(`payload.type ${JSON.stringify(body.type)} is not ${types.join(' or ')}`);
  const c = body.channelConfig;
  if (!isRecord(c)) invalid('payload.channelConfig is missing');
  const cc = c as Record<string, unknown>;
  const withdrawDelay = cc.withdrawDelay;
  if (typeof withdrawDelay !== 'number' || !Number.isSafeInteger(withdrawDelay) || withdrawDelay < 0)
    invalid('channelConfig.withdrawDelay must be an integer');
  const config: ChannelConfig = {
    payer: address(cc.payer, 'channelConfig.payer'),
    payerAuthorizer: address(cc.payerAuthorizer, 'channelConfig.payerAuthorizer'),
    receiver: address(cc.receiver, 'channelConfig.receiver'),
    receiverAuthorizer: address(cc.receiverAuthorizer, 'channelConfig.receiverAuthorizer'),
    token: address(cc.token, 'channelConfig.token'),
    withdrawDelay: withdrawDelay as number,
    salt: bytes32(cc.salt, 'channelConfig.salt'),
  };
  const v = body.voucher;
  if (!isRecord(v)) invalid('payload.voucher is missing');
  const vv = v as Record<string, unknown>;
  if (typeof vv.signature !== 'string' || !/^0x[0-9a-fA-F]{130}$/.test(vv.signature))
    invalid('voucher.signature must be 65 bytes hex');
  const voucher: SignedVoucher = {
    channelId: bytes32(vv.channelId, 'voucher.channelId'),
    maxClaimableAmount: uint128(vv.maxClaimableAmount, 'voucher.maxClaimableAmount'),
    signature: (vv.signature as string).toLowerCase() as Hex,
  };
  let depositAmount: bigint | null = null;
  if (body.type === 'deposit') {
    const d = body.deposit;
    if (!isRecord(d) || !isRecord((d as Record<string, unknown>).authorization))
      invalid('payload.deposit.authorization is missing');
    depositAmount = uint128((d as Record<string, unknown>).amount, 'deposit.amount');
    if (depositAmount === 0n) invalid('deposit.amount must be positive');
  }
  let refundAmount: bigint | undefined;
  if (body.type === 'refund' && body.amount !== undefined) {
    refundAmount = uint128(body.amount, 'amount');
    if (refundAmount === 0n) invalid('amount must be positive');
  }
  return {
    type: body.type as BatchPayment['type'],
    network: acc.network as string,
    config,
    voucher,
    depositAmount,
    ...(refundAmount !== undefined && { refundAmount }),
    raw,
  };
}

/**
 * What the channel must be for this router: the spec's verification rules 1–5 (config hash, token, receiver,
 * authorizer, delay).
 */
export interface ChannelTerms {
  chainId: number;
  receiver: Address;
  receiverAuthorizer: Address;
  token: Address;
  withdrawDelay: number;
}

function mismatch(message: string): never {
  throw new SluiceError('ERR_BATCH_CHANNEL_MISMATCH', `batch-settlement channel: ${message}`);
}

export function checkChannel(p: BatchPayment, terms: ChannelTerms): void {
  const c = p.config;
  if (channelIdOf(c, terms.chainId) !== p.voucher.channelId) mismatch('the config does not hash to voucher.channelId');
  if (c.receiver !== terms.receiver.toLowerCase())
    mismatch(`receiver ${c.receiver} is not this router's ${terms.receiver}`);
  if (c.receiverAuthorizer !== terms.receiverAuthorizer.toLowerCase())
    mismatch(`receiverAuthorizer ${c.receiverAuthorizer} is not ${terms.receiverAuthorizer}`);
  if (c.token !== terms.token.toLowerCase()) mismatch(`token ${c.token} is not the plan's asset ${terms.token}`);
  if (c.withdrawDelay !== terms.withdrawDelay)
    mismatch(`withdrawDelay ${c.withdrawDelay} is not ${terms.withdrawDelay}`);
  if (c.withdrawDelay < MIN_WITHDRAW_DELAY || c.withdrawDelay > MAX_WITHDRAW_DELAY)
    mismatch('withdrawDelay is outside 900 s – 30 days');
}

/**
 * Whether the voucher is signed by the channel's payerAuthorizer (an EOA: ECDSA, low-s only, no RPC). A channel
 * whose payerAuthorizer is zero is signed by the payer itself, possibly a smart wallet (EIP-1271): that needs the
 * chain, so this answers 'needs-facilitator' and the caller asks the facilitator's /verify.
 */
export async function verifyVoucher(
  config: ChannelConfig,
  voucher: SignedVoucher,
  chainId: number,
): Promise<'valid' | 'needs-facilitator'> {
  if (config.payerAuthorizer === ZERO_ADDRESS) return 'needs-facilitator';
  const bad = (): never => {
    throw new SluiceError('ERR_BATCH_VOUCHER_INVALID', "voucher signature is not the payerAuthorizer's");
  };
  // The contract (like OpenZeppelin's ECDSA) refuses the high-s twin: a voucher accepted here must be claimable.
  if (!isLowS(voucher.signature)) bad();
  // Outside the try: viem that cannot be loaded is ERR_MODULE_LOAD, not a bad signature.
  const { recoverAddress } = await loadEvm();
  let signer: string;
  try {
    signer = await recoverAddress({
      hash: voucherDigest(voucher.channelId, voucher.maxClaimableAmount, chainId),
      signature: voucher.signature,
    });
  } catch {
    return bad();
  }
  if (signer.toLowerCase() !== config.payerAuthorizer) bad();
  return 'valid';
}

/** A claim row as the contract and the facilitator's `claim` payload take it (amounts as decimal strings). */
export interface ClaimRow {
  voucher: { channel: ChannelConfig; maxClaimableAmount: string };
  signature: Hex;
  totalClaimed: string;
}

/** The ClaimBatch typed data a receiver authorizer signs for claimWithSignature. */
export function claimBatchTypedData(rows: readonly ClaimRow[], chainId: number) {
  return {
    domain: batchDomain(chainId),
    types: CLAIM_BATCH_TYPES,
    primaryType: 'ClaimBatch' as const,
    message: {
      claims: rows.map((r) => ({
        channelId: channelIdOf(r.voucher.channel, chainId),
        maxClaimableAmount: BigInt(r.voucher.maxClaimableAmount),
        totalClaimed: BigInt(r.totalClaimed),
      })),
    },
  };
}

/** The Refund typed data a receiver authorizer signs for refundWithSignature. */
export function refundTypedData(channelId: Hex, nonce: bigint, amount: bigint, chainId: number) {
  return {
    domain: batchDomain(chainId),
    types: REFUND_TYPES,
    primaryType: 'Refund' as const,
    message: { channelId, nonce, amount },
  };
}
