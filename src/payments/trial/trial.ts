/**
 * `trial`: a free trial — a plan with price 0 and `trial_every` (e.g. 15 minutes once a day per device). No money
 * moves; what keeps it from renewing is a ledger of who had one when (`<state_dir>/trials.json`), written (atomically)
 * before the trial is granted, so a crash can lose a trial but never hand out a second one.
 *
 * A trial is keyed on the device's MAC and, when the pay page sends one, on its device token (a random id it keeps in
 * the browser's storage): a phone that rotates its private MAC but keeps its browser gets no second trial, nor does
 * one that re-joins with the same MAC. What a determined abuser can still do: change the MAC *and* clear the browser's
 * storage (or use another browser) — a router sees nothing else that survives both. What bounds that is the plan's
 * `trial_limit`: at most so many trials of the plan per `trial_every` on this router, all devices together (default
 * 500, config/load.ts), counted from the ledger (one MAC key per trial granted), refused ERR_TRIAL_LIMIT past it.
 */
import { join } from 'node:path';
import { SluiceError, toSluiceError } from '../../errors.ts';
import { normalizeMac } from '../../mac.ts';
import { JsonTable, type JsonTableFormat } from '../../storage/index.ts';
import type { PaymentContext, PaymentMethod, PaymentRef, PurchaseRequest, Quote, QuoteInput } from '../types.ts';

export const TRIAL_METHOD_NAME = 'trial';
export const TRIALS_FILE = 'trials.json';
/** More entries than this and the oldest go first (a flood of invented device tokens cannot grow the file forever). */
export const MAX_TRIAL_KEYS = 20_000;
const TOKEN_RE = /^[A-Za-z0-9_-]{16,64}$/;

export interface TrialFigures {
  granted: number;
  refused: number;
  remembered: number;
  limited: number;
}

/** The keys a trial of `plan` is known by: the device's MAC, and its device token if it sent a well-formed one. */
export function trialKeys(plan: string, request: PurchaseRequest): string[] {
  const keys = [`${plan}|mac:${normalizeMac(request.mac)}`];
  const token = request.payment['device'];
  if (token !== undefined) {
    if (typeof token !== 'string' || !TOKEN_RE.test(token)) {
      throw new SluiceError('ERR_INVALID_ARGUMENT', 'payment.device must be 16 to 64 characters from A-Z a-z 0-9 _ -');
    }
    keys.push(`${plan}|device:${token}`);
  }
  return keys;
}

/** One key's last trial: when (ms) it was granted. */
interface Given {
  key: string;
  at: number;
}

/** `{"<key>": <ms>, …}`; read back oldest first, so that the table's order is age order (re-set keys go last). */
const FORMAT: JsonTableFormat<Given> = {
  code: 'ERR_TRIAL_STORE',
  what: 'a trial ledger (an object of key: ms)',
  key: (g) => g.key,
  split(json) {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TypeError('not an object');
    return { rows: Object.entries(json).sort((a, b) => Number(a[1]) - Number(b[1])), extra: undefined };
  },
  row(value) {
    const [key, at] = value as [string, unknown];
    if (!Number.isSafeInteger(at) || (at as number) < 0)
      throw new TypeError(`${key}: ${JSON.stringify(at)} is not a time in ms`);
    return { key, at: at as number };
  },
  join: (given) => Object.fromEntries(given.map((g) => [g.key, g.at])),
  empty: () => undefined,
};

export class TrialMethod implements PaymentMethod {
  readonly name = TRIAL_METHOD_NAME;
  readonly adminOnly = false;
  readonly sellsTrials = true;
  readonly figures: TrialFigures = { granted: 0, refused: 0, remembered: 0, limited: 0 };
  private constructor(
    /** Key → when (ms) its last trial was granted. Insertion order is age order (re-set keys move to the end). */
    private readonly given: JsonTable<Given>,
  ) {}

  /**
   * Reads the ledger; a damaged one refuses the method (ERR_TRIAL_STORE: the daemon leaves trials out, not the rest).
   */
  static open(stateDir: string): TrialMethod {
    const method = new TrialMethod(JsonTable.openSync(join(stateDir, TRIALS_FILE), FORMAT));
    method.figures.remembered = method.given.size;
    return method;
  }

  /** A trial plan's quote is always its fixed allowance (min_steps): the customer cannot ask for more. */
  quoteFor(request: PurchaseRequest, quote: (input: QuoteInput) => Quote): Quote {
    const q = quote({});
    if (q.trialEvery === undefined) {
      throw new SluiceError(
        'ERR_TRIAL_PLAN',
        `plan ${q.plan} is not a free trial (no trial_every): the trial method sells only trial plans`,
      );
    }
    void request;
    return q;
  }

  precheck({ quote, request, now }: PaymentContext): void {
    const every = Number(quote.trialEvery ?? 0n) * 1000;
    for (const key of trialKeys(quote.plan, request)) {
      const at = this.given.get(key)?.at;
      if (at !== undefined && now - at < every) {
        this.figures.refused++;
        const nextAt = at + every;
        throw new SluiceError(
          'ERR_TRIAL_USED',
          `this device had its free trial of plan ${quote.plan}; the next one from ${new Date(nextAt).toISOString()}`,
          {
            details: { plan: quote.plan, next_at: Math.ceil(nextAt / 1000) },
          },
        );
      }
    }
    const limit = quote.trialLimit ?? 0;
    if (limit > 0) {
      // Trials of this plan within the interval, all devices: each granted trial set one MAC key (at its grant).
      const prefix = `${quote.plan}|mac:`;
      let count = 0;
      let oldest = Infinity;
      for (const { key: k, at } of this.given.list()) {
        if (k.startsWith(prefix) && now - at < every) {
          count++;
          oldest = Math.min(oldest, at);
        }
      }
      if (count >= limit) {
        this.figures.limited++;
        const nextAt = oldest + every;
        throw new SluiceError(
          'ERR_TRIAL_LIMIT',
          `this router gave its ${limit} free trials of plan ${quote.plan} for now; the next one ` +
            `from ${new Date(nextAt).toISOString()}`,
          {
            details: { plan: quote.plan, next_at: Math.ceil(nextAt / 1000) },
          },
        );
      }
    }
  }

  async authorize(ctx: PaymentContext): Promise<PaymentRef> {
    // Checked again: two requests of one device may both have passed precheck before either was written.
    this.precheck(ctx);
    const keys = trialKeys(ctx.quote.plan, ctx.request);
    for (const k of keys) {
      this.given.drop(k);
      this.given.set({ key: k, at: ctx.now });
    }
    while (this.given.size > MAX_TRIAL_KEYS) this.given.drop(this.given.keys().next().value!);
    this.prune(ctx.quote.plan, ctx.now, Number(ctx.quote.trialEvery ?? 0n) * 1000);
    try {
      await this.given.flush();
    } catch (err) {
      // Not on flash: not granted (a crash now would forget it and allow a second).
      for (const k of keys) this.given.drop(k);
      throw new SluiceError('ERR_TRIAL_STORE', `cannot record the trial: ${toSluiceError(err).message}`, {
        cause: err,
      });
    }
    this.figures.granted++;
    this.figures.remembered = this.given.size;
    return {
      method: TRIAL_METHOD_NAME,
      reference: `trial-${normalizeMac(ctx.request.mac).replace(/:/g, '')}-${ctx.now}`,
      amount: 0n,
      asset: ctx.quote.asset,
      at: ctx.now,
    };
  }

  /** Forgets this plan's trials that can no longer refuse anything (older than its interval). */
  private prune(plan: string, now: number, everyMs: number): void {
    for (const { key: k, at } of this.given.list()) {
      if (now - at < everyMs) break; // age order: the rest are younger
      if (k.startsWith(`${plan}|`)) this.given.drop(k);
    }
  }
}
