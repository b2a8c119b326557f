/**
 * What a Cashu payment buys, decided without the network (cashu.ts waits on the mint; this file only decides):
 * whether a token's mint and unit are accepted, what its proofs are worth after the mint's input fees (NUT-02), how
 * many whole steps of the tollgate plan that buys within min/max steps (steps.ts), the quote for those steps, and the
 * payment reference an intent becomes once granted. The same rules price a token, an invoice (lightning.ts) and the
 * offer (lan-routes.ts).
 */
import { SluiceError } from '../../errors.ts';
import type { Config, PricingPlan, TollgateConfig } from '../../config/index.ts';
import type { PaymentRef } from '../../sessions/index.ts';
import type { Quote } from '../types.ts';
import {
  decodeToken,
  inputFee,
  referenceOf,
  tokenHeader,
  type DecodedToken,
  type KeysetEntry,
} from '../../cashu/index.ts';
import { stepsCap } from './steps.ts';
import type { SwapIntent } from './ledger-state.ts';

/** A token decoded against its mint's keysets: what it is worth after fees, and its reference (one per proof set). */
export interface PricedToken {
  token: DecodedToken;
  keysets: KeysetEntry[];
  net: bigint;
  ref: string;
}

/** The token's mint, when it and the unit are this router's: a token of another mint is refused without a call. */
export function acceptedMint(text: unknown, t: Pick<TollgateConfig, 'mints' | 'unit'>): string {
  const header = tokenHeader(text);
  if (!t.mints.includes(header.mint)) {
    throw new SluiceError('ERR_CASHU_MINT_NOT_ACCEPTED', `mint ${header.mint.slice(0, 200)} is not accepted here`, {
      details: { mint: header.mint.slice(0, 200), accepted: [...t.mints] },
    });
  }
  if (header.unit !== t.unit)
    throw new SluiceError('ERR_CASHU_UNIT', `the token is in ${header.unit.slice(0, 16)}; this router takes ${t.unit}`);
  return header.mint;
}

/**
 * The token decoded against `keysets`, and its value less the input fees, every proof in `unit`: what a quote needs.
 * Not its reference, a hash_to_curve of each proof's secret (a square root in the curve's field each, and more when a
 * hash misses the curve): that is made once, when the payment is checked (pricedToken).
 */
export function tokenValue(text: unknown, keysets: KeysetEntry[], unit: string): { token: DecodedToken; net: bigint } {
  const token = decodeToken(text, keysets);
  for (const p of token.proofs) {
    if (keysets.find((k) => k.id === p.id)?.unit !== unit)
      throw new SluiceError('ERR_CASHU_UNIT', `keyset ${p.id} is not a ${unit} keyset`);
  }
  return { token, net: token.value - inputFee(token.proofs, keysets) };
}

/** The token decoded against `keysets` and priced (tokenValue), with its reference. */
export function pricedToken(text: unknown, keysets: KeysetEntry[], unit: string): PricedToken {
  const { token, net } = tokenValue(text, keysets, unit);
  return { token, keysets, net, ref: referenceOf(token.proofs) };
}

/** The whole steps `net` sat buys: at least min_steps (ERR_CASHU_UNDERPAID), at most stepsCap (ERR_CASHU_TOO_LARGE). */
export function stepsFor(net: bigint, t: TollgateConfig, plan: PricingPlan): bigint {
  const steps = net > 0n ? net / t.pricePerStep : 0n;
  if (steps < t.minSteps) {
    throw new SluiceError(
      'ERR_CASHU_UNDERPAID',
      `the token is worth ${net > 0n ? net : 0n} sat after the mint's fees; at ` +
        `least ${t.minSteps * t.pricePerStep} sat buys the minimum of ${t.minSteps} step(s)`,
      { details: { net: (net > 0n ? net : 0n).toString(), min_price: (t.minSteps * t.pricePerStep).toString() } },
    );
  }
  const cap = stepsCap(t, plan);
  if (steps > cap) {
    throw new SluiceError('ERR_CASHU_TOO_LARGE', `the token buys ${steps} steps; one purchase buys at most ${cap}`, {
      details: { max_steps: cap.toString() },
    });
  }
  return steps;
}

/** The tollgate plan (ERR_UNKNOWN_PLAN when a reload took it away). */
export function tollgatePlan(config: Config, t: Pick<TollgateConfig, 'plan'>): PricingPlan {
  const plan = config.pricing.find((p) => p.id === t.plan);
  if (!plan) throw new SluiceError('ERR_UNKNOWN_PLAN', `the tollgate plan ${t.plan} is not configured`);
  return plan;
}

/** `steps` of the tollgate plan, priced in sat (the plan's own price is the other methods'). */
export function satQuote(plan: PricingPlan, t: Pick<TollgateConfig, 'pricePerStep'>, steps: bigint): Quote {
  return {
    plan: plan.id,
    metric: plan.metric,
    steps,
    allotment: steps * plan.stepSize,
    price: steps * t.pricePerStep,
    asset: 'sat',
    currency: 'sat',
    decimals: 0,
    stepSize: plan.stepSize,
    pricePerStep: t.pricePerStep,
    ...(plan.timeLimit !== undefined && { timeLimit: plan.timeLimit }),
    ...(plan.devices !== undefined && { devices: plan.devices }),
  };
}

/** The quote as an intent keeps it on flash (decimal strings). */
export function storedQuote(q: Quote): SwapIntent['quote'] {
  return {
    plan: q.plan,
    metric: q.metric,
    steps: q.steps.toString(),
    allotment: q.allotment.toString(),
    price: q.price.toString(),
    stepSize: q.stepSize.toString(),
  };
}

/** The payment an intent is once its proofs are ours: the sum of its outputs, for the steps it was quoted. */
export function paymentOf(method: string, intent: SwapIntent): PaymentRef {
  const net = intent.outputs.reduce((s, o) => s + BigInt(o.amount), 0n);
  return { method, reference: intent.ref, amount: net, asset: 'sat', at: intent.at, steps: BigInt(intent.quote.steps) };
}
