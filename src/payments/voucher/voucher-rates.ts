/**
 * A voucher's speed tier from its Access-Accept, read by THE rule a CoA's rates are read by
 * (src/radius/rate-attributes.ts: WISPr-Bandwidth-Max-Down/-Up and Mikrotik-Rate-Limit "rx-rate[/tx-rate] …", tx left
 * out is rx, a zero is no limit, the tighter per direction). An Accept only starts a session, so no limit and absent
 * are the same here: not limited. What differs from a CoA: a value sluice cannot use is left out with a problem the
 * caller logs, and the voucher is granted anyway (never refused, nor the daemon upset, for its rate).
 */
import { MAX_RATE_BPS, MIN_RATE_BPS, type ClientRates } from '../../portal/index.ts';
import { readRateAttributes, type AttributeReader } from '../../radius/index.ts';

export interface VoucherRates {
  /** null: the Accept set no usable rate. */
  rates: ClientRates | null;
  /** What was ignored, and why (for the log). */
  problems: string[];
}

/** Pure: the Accept's rate attributes → the rates; never throws. */
export function ratesFromAccept(reply: AttributeReader): VoucherRates {
  const r = readRateAttributes(reply, { min: MIN_RATE_BPS, max: MAX_RATE_BPS });
  const rates = { downBps: r.downBps ?? null, upBps: r.upBps ?? null };
  return { rates: rates.downBps === null && rates.upBps === null ? null : rates, problems: r.problems };
}
