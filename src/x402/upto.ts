/**
 * x402 `upto` on EVM (Permit2), the server's side of the wire (spec: x402-foundation/x402 specs/schemes/upto; the
 * reference: @x402/evm `./upto/*`). The payer signs ONE Permit2 `PermitWitnessTransferFrom` for a maximum; the
 * facilitator later calls the x402UptoPermit2Proxy's `settle(permit, amount, owner, witness, signature)` with the
 * actual amount (≤ the maximum), once: Permit2's unordered nonce makes a second settle of the same signature revert.
 * Pure: payload syntax, the terms sluice checks before it asks anyone, the signer. What an authorization is worth
 * against the meter is the payment method's business (src/payments/upto/x402-upto.ts).
 *
 *   payload: {x402Version: 2, accepted: {scheme: "upto", network, amount, asset, payTo, maxTimeoutSeconds, extra},
 *             payload: {signature, permit2Authorization: {from, permitted: {token, amount}, spender, nonce, deadline,
 *                                                         witness: {to, facilitator, validAfter}}}}
 */
import { SluiceError } from '../errors.ts';
import { decodeV2Envelope, type Address, type Hex } from './payload.ts';
import { evm, loadEvm } from './evm-loader.ts';

export const UPTO_SCHEME = 'upto';
/** Uniswap's Permit2, the same address on every chain: the EIP-712 verifying contract. */
export const PERMIT2_CONTRACT: Address = '0x000000000022d473030f116ddee9f6b43ac78ba3';
/** The x402 upto proxy (CREATE2, the same on every chain): the only spender an upto authorization may name. */
export const UPTO_PROXY_CONTRACT: Address = '0x4020a4f3b7b90cca423b9fabcc0ce57c6c240002';

/** The witness types @x402/evm signs (uptoPermit2WitnessTypes): the facilitator is part of the signed message. */
export const UPTO_PERMIT2_TYPES = {
  PermitWitnessTransferFrom: [
    { name: 'permitted', type: 'TokenPermissions' },
    { name: 'spender', type: 'address' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
    { name: 'witness', type: 'Witness' },
  ],
  TokenPermissions: [
    { name: 'token', type: 'address' },
    { name: 'amount', type: 'uint256' },
  ],
  Witness: [
    { name: 'to', type: 'address' },
    { name: 'facilitator', type: 'address' },
    { name: 'validAfter', type: 'uint256' },
  ],
} as const;

export interface UptoAuthorization {
  from: Address;
  token: Address;
  /** The signed maximum: the session's ceiling. */
  maxAmount: bigint;
  spender: Address;
  nonce: bigint;
  /** Unix seconds: after this the authorization cannot be settled. */
  deadline: bigint;
  to: Address;
  facilitator: Address;
  validAfter: bigint;
}

export interface UptoPayment {
  network: string;
  authorization: UptoAuthorization;
  signature: Hex;
  /** The payload as received: what /verify and /settle are sent. */
  raw: Record<string, unknown>;
}

const UINT256_MAX = (1n << 256n) - 1n;

function invalid(message: string): never {
  throw new SluiceError('ERR_UPTO_PAYLOAD_INVALID', `upto payload: ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function address(v: unknown, field: string): Address {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(v)) invalid(`${field} must be a 0x address`);
  return (v as string).toLowerCase() as Address;
}

function uint256(v: unknown, field: string): bigint {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,77})$/.test(v)) invalid(`${field} must be a decimal integer string`);
  const n = BigInt(v as string);
  if (n > UINT256_MAX) invalid(`${field} exceeds uint256`);
  return n;
}

/** The payload object, or the base64 JSON a PAYMENT-SIGNATURE header carries; shape and syntax only. */
export function parseUptoPayment(input: unknown): UptoPayment {
  const { raw, accepted: acc } = decodeV2Envelope(input, invalid);
  if (acc.scheme !== UPTO_SCHEME)
    throw new SluiceError('ERR_X402_SCHEME_UNSUPPORTED', `scheme ${JSON.stringify(acc.scheme)} is not ${UPTO_SCHEME}`);
  if (typeof acc.network !== 'string') invalid('accepted.network is missing');
  const body = raw.payload;
  if (!isRecord(body)) invalid('payload is missing');
  // A smart-wallet payer signs longer (EIP-1271 / ERC-6492): bounded by the payload's size, checked by the facilitator.
  if (typeof body.signature !== 'string' || !/^0x([0-9a-fA-F]{2}){65,}$/.test(body.signature))
    invalid('signature must be hex, at least 65 bytes');
  const a = body.permit2Authorization;
  if (!isRecord(a)) invalid('payload.permit2Authorization is missing');
  const permitted = a.permitted;
  const witness = a.witness;
  if (!isRecord(permitted)) invalid('permit2Authorization.permitted is missing');
  if (!isRecord(witness)) invalid('permit2Authorization.witness is missing');
  const authorization: UptoAuthorization = {
    from: address(a.from, 'from'),
    token: address(permitted.token, 'permitted.token'),
    maxAmount: uint256(permitted.amount, 'permitted.amount'),
    spender: address(a.spender, 'spender'),
    nonce: uint256(a.nonce, 'nonce'),
    deadline: uint256(a.deadline, 'deadline'),
    to: address(witness.to, 'witness.to'),
    facilitator: address(witness.facilitator, 'witness.facilitator'),
    validAfter: uint256(witness.validAfter, 'witness.validAfter'),
  };
  if (authorization.maxAmount === 0n) invalid('permitted.amount must be positive');
  return {
    network: acc.network as string,
    authorization,
    signature: (body.signature as string).toLowerCase() as Hex,
    raw,
  };
}

/** The payment reference of one authorization: payer and Permit2 nonce (what the chain spends once). */
export function uptoReference(a: Pick<UptoAuthorization, 'from' | 'nonce'>): string {
  return `${a.from.toLowerCase()}:${a.nonce.toString()}`;
}

export interface UptoTerms {
  chainId: number;
  /** Where the money goes (the witness `to`). */
  payTo: Address;
  /** The plan's asset. */
  asset: Address;
  /** What the session's ceiling is: the authorization must sign exactly this maximum. */
  ceiling: bigint;
  /** The facilitator addresses /supported advertised (any of them may be the witness's). */
  facilitators: readonly Address[];
  /** Unix seconds now. */
  now: bigint;
  /** The authorization must stay settleable at least until this (Unix seconds): the session's end plus a margin. */
  settleableUntil: bigint;
}

function refuse(reason: string, message: string): never {
  throw new SluiceError('ERR_UPTO_AUTHORIZATION_INVALID', `upto authorization: ${message}`, { details: { reason } });
}

/** The terms sluice checks itself before asking the facilitator; the reasons are @x402/evm's where it has one. */
export function checkUptoTerms(p: UptoPayment, t: UptoTerms): void {
  const a = p.authorization;
  if (a.spender !== UPTO_PROXY_CONTRACT)
    refuse('invalid_permit2_spender', `spender ${a.spender} is not the x402 upto proxy`);
  if (a.to !== t.payTo.toLowerCase())
    refuse('invalid_permit2_recipient_mismatch', `witness.to ${a.to} is not this router's pay_to`);
  if (a.token !== t.asset.toLowerCase()) refuse('permit2_token_mismatch', `token ${a.token} is not the plan's asset`);
  if (!t.facilitators.some((f) => f.toLowerCase() === a.facilitator))
    refuse('upto_facilitator_mismatch', `witness.facilitator ${a.facilitator} is not this router's facilitator`);
  if (a.maxAmount !== t.ceiling)
    refuse('permit2_amount_mismatch', `permitted.amount ${a.maxAmount} is not the quote's ceiling ${t.ceiling}`);
  if (a.validAfter > t.now) refuse('permit2_not_yet_valid', 'witness.validAfter is in the future');
  if (a.deadline < t.settleableUntil) {
    refuse(
      'permit2_deadline_expired',
      `deadline ${a.deadline} ends before the session could be settled (${t.settleableUntil})`,
    );
  }
}

/** The Permit2 EIP-712 digest the payer signed (domain: name "Permit2", chainId, Permit2's address; no version). */
export function uptoDigest(a: UptoAuthorization, chainId: number): Hex {
  return evm().hashTypedData({
    domain: { name: 'Permit2', chainId, verifyingContract: PERMIT2_CONTRACT },
    types: UPTO_PERMIT2_TYPES,
    primaryType: 'PermitWitnessTransferFrom',
    message: {
      permitted: { token: a.token, amount: a.maxAmount },
      spender: a.spender,
      nonce: a.nonce,
      deadline: a.deadline,
      witness: { to: a.to, facilitator: a.facilitator, validAfter: a.validAfter },
    },
  });
}

/**
 * A 65-byte signature is checked here (ECDSA recovery = the payer); a longer one (a smart wallet) only by the
 * facilitator's /verify, which every purchase asks anyway.
 */
export async function verifyUptoSignature(p: UptoPayment, chainId: number): Promise<'valid' | 'needs-facilitator'> {
  if (p.signature.length !== 132) return 'needs-facilitator';
  // Outside the try: viem that cannot be loaded is ERR_MODULE_LOAD, not a bad signature.
  const { recoverAddress } = await loadEvm();
  let signer: string;
  try {
    signer = await recoverAddress({ hash: uptoDigest(p.authorization, chainId), signature: p.signature });
  } catch {
    return refuse('invalid_permit2_signature', 'the signature does not recover');
  }
  if (signer.toLowerCase() !== p.authorization.from)
    refuse('invalid_permit2_signature', "the signature is not the payer's");
  return 'valid';
}
