/**
 * What an `x402-session` deposit must be before anything moves: x402's local checks of the payment (network, asset and
 * its EIP-712 domain, payee = the escrow, amount, window, the buyer's ReceiveWithAuthorization signature) and its
 * session terms against the plan and `escrow.*` (seller, price per unit, units, duration, the nonce that binds them).
 */
import type { Address as ViemAddress, Hex as ViemHex } from 'viem';
import { SluiceError } from '../../errors.ts';
import type { EscrowConfig } from '../../config/index.ts';
import { sessionIdOf, termsNonce } from '../../escrow/index.ts';
import {
  knownTokenDomain,
  parseExactPayment,
  verifyLocally,
  type Address,
  type ExactPayment,
  type TokenDomain,
} from '../../x402/index.ts';
import { WINDOW_MARGIN_SECONDS } from '../exact/options.ts';
import type { PaymentContext } from '../types.ts';
import { MAX_DURATION_SECONDS, MAX_WINDOW_SECONDS, mismatch, parseSessionTerms, type SessionDeposit } from './terms.ts';

/**
 * The EIP-712 domain of the plan's token: sluice's table, else what the payload's `accepted.extra` names (the
 * signature is then checked under it).
 */
function domainOf(config: EscrowConfig, asset: string, p: ExactPayment): TokenDomain {
  const known = knownTokenDomain(config.network, asset);
  if (known) return known;
  const { name, version } = p.accepted?.extra ?? {};
  if (name === undefined || version === undefined) {
    throw new SluiceError(
      'ERR_X402_ASSET_UNSUPPORTED',
      `plan asset ${asset} on ${config.network} has no known EIP-712 domain: the payload's ` +
        'accepted.extra must name it',
    );
  }
  return { name, version };
}

/** The deposit after every local check, or the refusal that says which one failed (nothing has moved). */
export async function checkDeposit(c: EscrowConfig, ctx: PaymentContext): Promise<SessionDeposit> {
  const p = parseExactPayment(ctx.request.payment?.payload);
  if (p.x402Version !== 2) mismatch('an escrow session needs an x402 v2 payload (extensions.session)');
  const terms = parseSessionTerms(p.raw);
  const asset = ctx.quote.asset.toLowerCase() as Address;
  const now = BigInt(Math.floor(ctx.now / 1000));
  await verifyLocally(p, {
    network: c.network,
    chainId: c.chainId,
    asset,
    domain: domainOf(c, asset, p),
    payTo: c.address as Address,
    price: ctx.quote.price,
    now,
    marginSeconds: WINDOW_MARGIN_SECONDS,
    maxTimeoutSeconds: MAX_WINDOW_SECONDS,
    primaryType: 'ReceiveWithAuthorization',
  });
  if (terms.seller !== c.seller) mismatch(`session seller ${terms.seller} is not this router's seller ${c.seller}`);
  if (terms.pricePerUnit !== ctx.quote.pricePerStep) {
    mismatch(
      `session pricePerUnit ${terms.pricePerUnit} differs from the plan's price per step ${ctx.quote.pricePerStep}`,
      { pricePerUnit: terms.pricePerUnit.toString(), pricePerStep: ctx.quote.pricePerStep.toString() },
    );
  }
  if (terms.maxUnits !== ctx.quote.steps)
    mismatch(`session maxUnits ${terms.maxUnits} differs from the steps bought ${ctx.quote.steps}`);
  if (p.authorization.value !== terms.pricePerUnit * terms.maxUnits) {
    mismatch(
      `deposit ${p.authorization.value} is not maxUnits × pricePerUnit = ${terms.pricePerUnit * terms.maxUnits}`,
    );
  }
  const minDuration = ctx.quote.metric === 'seconds' ? ctx.quote.allotment : 60n;
  if (terms.duration < minDuration || terms.duration > MAX_DURATION_SECONDS) {
    mismatch(`session duration ${terms.duration} s must be from ${minDuration} to ${MAX_DURATION_SECONDS} s`);
  }
  if (termsNonce(c.address as ViemAddress, terms) !== p.authorization.nonce) {
    mismatch('the authorization nonce is not the hash of the session terms (termsNonce)');
  }
  const buyer = p.authorization.from;
  return {
    payment: p,
    terms,
    sessionId: sessionIdOf(asset as ViemAddress, buyer as ViemAddress, p.authorization.nonce as ViemHex),
    buyer,
    asset,
  };
}
