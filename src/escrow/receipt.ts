/**
 * Buyer-signed usage receipts for escrow sessions, and the credit rule that gates on them. Pure: no I/O, no clock.
 *
 * A receipt is EIP-712 `UsageReceipt{bytes32 sessionId, uint256 cumulativeUnits, uint256 nonce}` in the domain
 * {name "SessionEscrow", version "1", chainId, verifyingContract = the escrow}; test/escrow/SessionEscrow.sol checks
 * the same digest on chain. Units are cumulative, so keeping only the highest receipt loses nothing and a replayed
 * one is harmless.
 */
import type { Address, Hex } from 'viem';
import { SluiceError } from '../errors.ts';
import { evm, isLowS, loadEvm } from '../x402/index.ts';

export const RECEIPT_TYPES = {
  UsageReceipt: [
    { name: 'sessionId', type: 'bytes32' },
    { name: 'cumulativeUnits', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
  ],
} as const;

export interface EscrowDomain {
  chainId: number;
  /** The SessionEscrow contract. */
  escrow: Address;
}

export interface UsageReceipt {
  sessionId: Hex;
  cumulativeUnits: bigint;
  nonce: bigint;
  signature: Hex;
}

export function receiptDomain(d: EscrowDomain): {
  name: 'SessionEscrow';
  version: '1';
  chainId: number;
  verifyingContract: Address;
} {
  return { name: 'SessionEscrow', version: '1', chainId: d.chainId, verifyingContract: evm().getAddress(d.escrow) };
}

/** The typed data a wallet signs (viem's signTypedData takes it as is). */
export function receiptTypedData(d: EscrowDomain, r: Omit<UsageReceipt, 'signature'>) {
  return {
    domain: receiptDomain(d),
    types: RECEIPT_TYPES,
    primaryType: 'UsageReceipt' as const,
    message: { sessionId: r.sessionId, cumulativeUnits: r.cumulativeUnits, nonce: r.nonce },
  };
}

const UINT256_MAX = (1n << 256n) - 1n;

function bad(message: string, details?: Record<string, unknown>): never {
  throw new SluiceError('ERR_RECEIPT_INVALID', message, details ? { details } : {});
}

function uint(value: unknown, field: string): bigint {
  if (typeof value === 'bigint') {
    if (value >= 0n && value <= UINT256_MAX) return value;
    bad(`${field} out of range`);
  }
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === 'string' && /^(0|[1-9][0-9]{0,77})$/.test(value)) {
    const v = BigInt(value);
    if (v <= UINT256_MAX) return v;
  }
  return bad(`${field} must be a non-negative integer (decimal string)`, { field });
}

/** Parses a receipt as ubus / HTTP carry it (`session_id`|`sessionId`, `cumulative_units`, `nonce`, `signature`). */
export function parseReceipt(input: Record<string, unknown>): UsageReceipt {
  const sessionId = input['session_id'] ?? input['sessionId'];
  if (typeof sessionId !== 'string' || !evm().isHex(sessionId) || sessionId.length !== 66)
    bad('session_id must be 32 bytes hex');
  const signature = input['signature'];
  if (typeof signature !== 'string' || !evm().isHex(signature) || signature.length !== 132)
    bad('signature must be 65 bytes hex');
  return {
    sessionId: sessionId.toLowerCase() as Hex,
    cumulativeUnits: uint(input['cumulative_units'] ?? input['cumulativeUnits'], 'cumulative_units'),
    nonce: uint(input['nonce'] ?? 0, 'nonce'),
    signature: signature as Hex,
  };
}

/**
 * Verifies that the session's buyer signed `r` for this escrow with a low-s signature, the only form the contract
 * accepts (ERR_RECEIPT_SIGNER otherwise), and that it does not claim more than the session holds (ERR_RECEIPT_INVALID).
 */
export async function verifyReceipt(
  d: EscrowDomain,
  r: UsageReceipt,
  session: { sessionId: Hex; buyer: Address; maxUnits: bigint },
): Promise<void> {
  if (r.sessionId.toLowerCase() !== session.sessionId.toLowerCase()) {
    throw new SluiceError('ERR_RECEIPT_SESSION', 'receipt is for another escrow session');
  }
  if (r.cumulativeUnits > session.maxUnits) bad('receipt claims more units than the session holds');
  // The high-s twin of the buyer's receipt recovers to the buyer too, but the contract refuses it: kept, it would make
  // every consume and the close revert (the seller never paid, the deposit left to the buyer's reclaim).
  if (!isLowS(r.signature)) throw new SluiceError('ERR_RECEIPT_SIGNER', 'receipt signature is malleable (high s)');
  // Outside the try: viem that cannot be loaded is ERR_MODULE_LOAD, not a bad receipt.
  const { recoverTypedDataAddress } = await loadEvm();
  let signer: Address;
  try {
    signer = await recoverTypedDataAddress({ ...receiptTypedData(d, r), signature: r.signature });
  } catch (err) {
    throw new SluiceError('ERR_RECEIPT_SIGNER', 'receipt signature does not recover', { cause: err });
  }
  if (signer !== evm().getAddress(session.buyer)) {
    throw new SluiceError('ERR_RECEIPT_SIGNER', "receipt is not signed by the session's buyer");
  }
}

/** Keeps the highest receipt; a lower or equal one changes nothing (returns false). */
export function keepHighest(
  current: UsageReceipt | undefined,
  next: UsageReceipt,
): { receipt: UsageReceipt; advanced: boolean } {
  if (current && next.cumulativeUnits <= current.cumulativeUnits) return { receipt: current, advanced: false };
  return { receipt: next, advanced: true };
}

export type CreditState = 'open' | 'awaiting-receipt';

/**
 * The credit rule: metered usage (in whole steps, rounded up: a started step counts) may run ahead of the latest
 * receipt by at most `creditSteps`. At the limit the gate closes; a receipt covering the usage re-opens it.
 */
export function creditState(meteredSteps: bigint, receiptUnits: bigint, creditSteps: bigint): CreditState {
  return meteredSteps - receiptUnits > creditSteps ? 'awaiting-receipt' : 'open';
}

/** Metered usage → steps charged (a started step counts, never above maxUnits). */
export function meteredSteps(used: bigint, stepSize: bigint, maxUnits: bigint): bigint {
  if (stepSize <= 0n) throw new RangeError('stepSize must be positive');
  const steps = (used + stepSize - 1n) / stepSize;
  return steps > maxUnits ? maxUnits : steps;
}

export interface SessionTerms {
  seller: Address;
  pricePerUnit: bigint;
  maxUnits: bigint;
  duration: bigint;
  salt: Hex;
}

const TERMS_TYPE =
  'SessionTerms(address escrow,address seller,uint256 pricePerUnit,uint256 maxUnits,uint256 duration,bytes32 salt)';
// Hashed on first use, not when the module loads: viem is loaded when first needed (x402/evm-loader.ts).
let termsTypehash: Hex | undefined;

/**
 * The EIP-3009 nonce a buyer signs for a session deposit: derived from the terms, so the one deposit signature binds
 * seller, price, units and duration (SessionEscrow.termsNonce computes the same).
 */
export function termsNonce(escrow: Address, t: SessionTerms): Hex {
  const { encodeAbiParameters, getAddress, isAddress, keccak256, toHex } = evm();
  if (!isAddress(t.seller)) throw new SluiceError('ERR_RECEIPT_INVALID', 'seller is not an address');
  termsTypehash ??= keccak256(toHex(TERMS_TYPE));
  return keccak256(
    encodeAbiParameters(
      [
        { type: 'bytes32' },
        { type: 'address' },
        { type: 'address' },
        { type: 'uint256' },
        { type: 'uint256' },
        { type: 'uint256' },
        { type: 'bytes32' },
      ],
      [termsTypehash, getAddress(escrow), getAddress(t.seller), t.pricePerUnit, t.maxUnits, t.duration, t.salt],
    ),
  );
}

/** SessionEscrow.sessionIdOf: the escrow session id is known before the create transaction. */
export function sessionIdOf(token: Address, buyer: Address, nonce: Hex): Hex {
  const { encodeAbiParameters, getAddress, keccak256 } = evm();
  return keccak256(
    encodeAbiParameters(
      [{ type: 'address' }, { type: 'address' }, { type: 'bytes32' }],
      [getAddress(token), getAddress(buyer), nonce],
    ),
  );
}
