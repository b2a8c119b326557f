/**
 * The checks sluice makes itself before any network call, in the order a facilitator makes them, each failure with
 * its own code: scheme, network, asset and its EIP-712 domain, payee, amount, validity window, then the signature
 * (last: recovering it is the only costly step, ~2 ms). Pure apart from the clock passed in.
 */
import { SluiceError, type ErrorCode } from '../errors.ts';
import type { Address, ExactPayment } from './payload.ts';
import type { TokenDomain } from './networks.ts';
import { isLowS } from './signature.ts';
import { loadEvm } from './evm-loader.ts';

export interface LocalRequirements {
  /** CAIP-2. */
  network: string;
  chainId: number;
  /** Lower-case token address (the plan's asset). */
  asset: Address;
  domain: TokenDomain;
  /** Lower-case. */
  payTo: Address;
  /** The least `value` that buys the quote. */
  price: bigint;
  /** Unix seconds now. */
  now: bigint;
  /** validBefore must be at least this many seconds ahead (the settle must land before it closes). */
  marginSeconds: bigint;
  /** validBefore at most this far ahead: bounds how long a nonce must be remembered. */
  maxTimeoutSeconds: bigint;
  /**
   * What the signature authorizes: a transfer anyone may submit (x402 `exact`), or one only the payee (`payTo`, a
   * contract) may receive (an escrow deposit, pulled inside the contract's own call). Default
   * TransferWithAuthorization.
   */
  primaryType?: AuthorizationType;
}

export type AuthorizationType = 'TransferWithAuthorization' | 'ReceiveWithAuthorization';

export const AUTHORIZATION_TYPES = {
  TransferWithAuthorization: [
    { name: 'from', type: 'address' },
    { name: 'to', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'validAfter', type: 'uint256' },
    { name: 'validBefore', type: 'uint256' },
    { name: 'nonce', type: 'bytes32' },
  ],
} as const;

function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new SluiceError(code, message, details ? { details } : {});
}

/** Everything but the signature (cheap, synchronous). */
export function checkTerms(p: ExactPayment, req: LocalRequirements): void {
  const a = p.authorization;
  if (p.scheme !== 'exact')
    fail('ERR_X402_SCHEME_UNSUPPORTED', `x402 scheme ${JSON.stringify(p.scheme)} is not accepted (only "exact")`);
  if (p.network !== req.network)
    fail('ERR_X402_NETWORK_MISMATCH', `payment is for network ${p.network}; this router takes ${req.network}`);
  const acc = p.accepted;
  if (acc) {
    if (acc.asset !== req.asset)
      fail('ERR_X402_ASSET_MISMATCH', `payment is in token ${acc.asset}; the plan sells for ${req.asset}`);
    if (
      (acc.extra.name !== undefined && acc.extra.name !== req.domain.name) ||
      (acc.extra.version !== undefined && acc.extra.version !== req.domain.version)
    ) {
      fail(
        'ERR_X402_DOMAIN_MISMATCH',
        `payment signed for token domain ${JSON.stringify(acc.extra.name)} ` +
          `version ${JSON.stringify(acc.extra.version)}; the token's is ${JSON.stringify(req.domain.name)} ` +
          `version ${JSON.stringify(req.domain.version)}`,
      );
    }
    if (acc.payTo !== req.payTo)
      fail('ERR_X402_PAY_TO_MISMATCH', `payment accepted payee ${acc.payTo}; this router's is ${req.payTo}`);
  }
  if (a.to !== req.payTo)
    fail('ERR_X402_PAY_TO_MISMATCH', `authorization pays ${a.to}; this router's payee is ${req.payTo}`);
  if (a.value < req.price) {
    fail('ERR_X402_UNDERPAID', `authorization value ${a.value} is below the price ${req.price}`, {
      value: a.value.toString(),
      price: req.price.toString(),
    });
  }
  if (a.validBefore < req.now + req.marginSeconds) {
    fail(
      'ERR_X402_EXPIRED',
      `authorization expired or expires within ${req.marginSeconds} s (validBefore ${a.validBefore}, now ${req.now})`,
    );
  }
  if (a.validAfter > req.now)
    fail('ERR_X402_NOT_YET_VALID', `authorization is valid only after ${a.validAfter} (now ${req.now})`);
  if (a.validBefore > req.now + req.maxTimeoutSeconds + req.marginSeconds) {
    fail(
      'ERR_X402_WINDOW_TOO_LONG',
      `authorization stays valid until ${a.validBefore}, more than max_timeout_seconds ` +
        `(${req.maxTimeoutSeconds}) ahead`,
    );
  }
}

/** The address the EIP-3009 signature recovers to, under the token's domain on the configured chain. */
export async function recoverSigner(
  p: ExactPayment,
  req: Pick<LocalRequirements, 'chainId' | 'asset' | 'domain' | 'primaryType'>,
): Promise<Address> {
  const { recoverTypedDataAddress } = await loadEvm();
  const a = p.authorization;
  const primaryType = req.primaryType ?? 'TransferWithAuthorization';
  return (await recoverTypedDataAddress({
    domain: { name: req.domain.name, version: req.domain.version, chainId: req.chainId, verifyingContract: req.asset },
    // Both EIP-3009 types have the same fields; only the name (and so the digest) differs.
    types: { [primaryType]: AUTHORIZATION_TYPES.TransferWithAuthorization } as Record<
      AuthorizationType,
      typeof AUTHORIZATION_TYPES.TransferWithAuthorization
    >,
    primaryType,
    message: {
      from: a.from,
      to: a.to,
      value: a.value,
      validAfter: a.validAfter,
      validBefore: a.validBefore,
      nonce: a.nonce,
    },
    signature: p.signature,
  })) as Address;
}

/** All local checks; resolves when the payment is good for `req`, else throws the first failure's code. */
export async function verifyLocally(p: ExactPayment, req: LocalRequirements): Promise<void> {
  checkTerms(p, req);
  // A high-s signature is a malleated copy; USDC refuses it on chain, so refuse it here.
  if (!isLowS(p.signature)) fail('ERR_X402_SIGNATURE_INVALID', 'signature is malleable (high s)');
  // Outside the try: viem that cannot be loaded is ERR_MODULE_LOAD (the purchase refused with it), not a bad signature.
  await loadEvm();
  let signer: Address;
  try {
    signer = await recoverSigner(p, req);
  } catch {
    fail('ERR_X402_SIGNATURE_INVALID', 'signature does not recover to any address');
  }
  if (signer.toLowerCase() !== p.authorization.from) {
    fail(
      'ERR_X402_SIGNATURE_INVALID',
      `signature does not recover to authorization.from ${p.authorization.from} under the token's domain`,
    );
  }
}
