/**
 * Wire shapes of sessions, quotes and plans. Byte counts and amounts are decimal strings: they are bigints in sluice,
 * and a JSON number loses precision past 2^53 in LuCI's JavaScript; times are unix seconds.
 */
import type { BlobmsgTable } from '../ubus/index.ts';
import type { PricingPlan } from '../config/index.ts';
import type { QuoteRecord } from './backend.ts';
import { devicesOf, paymentTotals, remaining, usedAt, type Session } from '../sessions/index.ts';
import { arrivalOf } from '../upstream/index.ts';

const unixSeconds = (ms: number | null): number | null => (ms === null ? null : Math.floor(ms / 1000));

export function sessionView(session: Session, now: number): BlobmsgTable {
  return {
    id: session.id,
    mac: session.mac,
    ip: session.ip,
    user: session.user,
    plan: session.plan,
    state: session.state,
    metric: session.metric,
    allotment: session.allotment.toString(),
    used: usedAt(session, now).toString(),
    remaining: remaining(session, now).toString(),
    created_at: unixSeconds(session.createdAt),
    started_at: unixSeconds(session.startedAt),
    expires_at: unixSeconds(session.expiresAt),
    ended_at: unixSeconds(session.endedAt),
    end_cause: session.endCause,
    payments: session.payments.map((p) => ({
      method: p.method,
      reference: p.reference,
      amount: p.amount.toString(),
      asset: p.asset,
    })),
    // Totals over every payment: `payments` lists only the first and the most recent few.
    payment_count: paymentTotals(session).count,
    paid_total: paymentTotals(session).paid.toString(),
    // Several devices per purchase: every MAC sharing the allotment, the buyer's first, and how many may.
    ...(session.maxDevices !== undefined && { max_devices: session.maxDevices, devices: devicesOf(session) }),
    // The speed tier sluice enforces on the session's gates (journaled with it), bit/s; null: not limited that way.
    // Roaming (roaming.md): a session a handover opened here, where from and since when.
    ...venueField(session),
    rate_down: session.rates?.downBps ?? null,
    rate_up: session.rates?.upBps ?? null,
  };
}

export function quoteView(quote: QuoteRecord): BlobmsgTable {
  return {
    plan: quote.plan,
    metric: quote.metric,
    steps: quote.steps.toString(),
    allotment: quote.allotment.toString(),
    price: quote.price.toString(),
    asset: quote.asset,
    currency: quote.currency,
    decimals: quote.decimals,
    ...(quote.timeLimit !== undefined && { time_limit: quote.timeLimit.toString() }),
  };
}

export function planView(plan: PricingPlan): BlobmsgTable {
  return {
    id: plan.id,
    metric: plan.metric,
    step_size: plan.stepSize.toString(),
    price_per_step: plan.pricePerStep.toString(),
    asset: plan.asset,
    currency: plan.currency,
    decimals: plan.decimals,
    min_steps: plan.minSteps.toString(),
    max_steps: plan.maxSteps.toString(),
    ...(plan.timeLimit !== undefined && { time_limit: plan.timeLimit.toString() }),
    ...(plan.trialEvery !== undefined && { trial_every: plan.trialEvery.toString() }),
    ...(plan.trialLimit !== undefined && { trial_limit: plan.trialLimit }),
    ...(plan.devices !== undefined && { devices: plan.devices }),
    ...(plan.displayName !== undefined && { display_name: plan.displayName }),
    // Bits per second (a speed tier), as numbers: far below 2^53.
    ...(plan.rateDownBps !== undefined && { rate_down: plan.rateDownBps }),
    ...(plan.rateUpBps !== undefined && { rate_up: plan.rateUpBps }),
  };
}

/** `venue` {name, lease, epoch, from, since} of a session that arrived by a handover; nothing for one sold here. */
function venueField(session: Session): { venue?: BlobmsgTable } {
  const arrival = arrivalOf(session);
  if (arrival === null) return {};
  const { venue: name, lease, epoch, from } = arrival;
  return { venue: { name, lease, epoch, from, since: unixSeconds(session.startedAt ?? session.createdAt) } };
}
