/**
 * The `tollgate` section: TollGate clients pay with Cashu ecash (payment method `cashu`), over TollGate's
 * HTTP door (`listen`, :2121 on the LAN address) and through sluice's own purchase paths; the router holds the ecash
 * it takes (custody: `<state_dir>/cashu/`) up to `max_balance` and pays it out to `payout_address`. `config.tollgate`
 * is null when the section is absent, disabled, or has a problem (the partial loader disables it), so a running
 * method always has a whole section. docs/configuration.md and docs/tollgate.md explain the options.
 */
import { normalizeMintUrl } from '../cashu/mint-url.ts';
import type { SectionReader } from './reader.ts';
import { parseListen } from './http.ts';
import { parseUnsignedBigInt, parseHttpUrl, type Parsed } from './values.ts';

export interface TollgateConfig {
  /** Always true: a disabled section is `config.tollgate === null`. */
  enabled: true;
  /** TollGate's HTTP door; host '' (port 0) = off (the `cashu` method still sells through ubus and the pay page). */
  listen: { host: string; port: number };
  /** The plan sold over TollGate (its metric and step size; TollGate advertises one metric). Must exist. */
  plan: string;
  /** Accepted mints, normalised (normalizeMintUrl), in the config's order, no duplicates; at least one. */
  mints: readonly string[];
  /** Cashu unit: only 'sat' today. */
  unit: 'sat';
  /** Price of one step of `plan` in `unit` (the plan's own price, in its asset, is for the other methods). */
  pricePerStep: bigint;
  /** Fewest steps a token must buy (after the mint's input fees); advertised as TollGate's `min_steps`. */
  minSteps: bigint;
  /** Most steps one token may buy; null: no cap beyond the plan's `max_steps`. */
  maxSteps: bigint | null;
  /** The most ecash (in `unit`) the router holds across all mints; a payment that would pass it is refused. */
  maxBalance: bigint;
  /** Where payouts go: a Lightning address (name@host) or an LNURL-pay (`lnurl1…`); '' = no payout. */
  payoutAddress: string;
  /** A mint's balance is paid out once it reaches this (in `unit`). */
  payoutMin: bigint;
}

/**
 * max_balance's default, 50 000 sat (about 50 USD at 100 000 USD/BTC): a few days of a busy café's TollGate sales at
 * TollGate's sample prices (21 sat a minute), and the most a stolen or reflashed router can lose. payout_min's, 5 000
 * sat: a payout's Lightning fee (the mint's fee_reserve, often 1–2 %, a few sat at least) stays small beside it.
 */
export const TOLLGATE_DEFAULTS = { unit: 'sat', min_steps: 1n, max_balance: 50_000n, payout_min: 5_000n } as const;
/** 21 million BTC in sat: no amount of ecash a router holds is above it. */
const MAX_SAT = 2_100_000_000_000_000n;
const MAX_STEPS = BigInt(Number.MAX_SAFE_INTEGER);

const mintUrl = (v: string): Parsed<string> => {
  const checked = parseHttpUrl(v);
  if (!checked.ok) return checked;
  const n = normalizeMintUrl(v);
  if (n === null || v.length > 512)
    return {
      ok: false,
      reason: 'must be an http:// or https:// mint URL with a host, at most 512 characters, no user or password',
    };
  return { ok: true, value: n };
};

/** A Lightning address's name@host (LUD-16): a host of DNS labels, 253 characters at most. */
const LIGHTNING_ADDRESS = new RegExp(
  /^[a-z0-9_.+-]{1,64}@(?=.{1,253}$)/.source +
    /[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/.source,
  'i',
);

/** A Lightning address (LUD-16, name@host) or a bech32 LNURL (LUD-01, `lnurl1…`); '' = none. */
function payoutAddress(v: string): Parsed<string> {
  if (v === '') return { ok: true, value: '' };
  if (LIGHTNING_ADDRESS.test(v)) {
    return { ok: true, value: v.toLowerCase() };
  }
  if (/^lnurl1[02-9ac-hj-np-z]{6,2000}$/i.test(v)) return { ok: true, value: v.toLowerCase() };
  return { ok: false, reason: 'must be a Lightning address (name@host) or an LNURL-pay (lnurl1…)' };
}

const sats =
  (min: bigint, what: string) =>
  (v: string): Parsed<bigint> => {
    const p = parseUnsignedBigInt(v, MAX_SAT, `must be a whole number of sat from ${min}`);
    return p.ok && p.value < min ? { ok: false, reason: `must be a whole number of sat from ${min}${what}` } : p;
  };
const steps = (v: string): Parsed<bigint> => {
  const p = parseUnsignedBigInt(v, MAX_STEPS, 'must be a whole number of steps, at least 1');
  return p.ok && p.value < 1n ? { ok: false, reason: 'must be a whole number of steps, at least 1' } : p;
};

/**
 * The section as read (enabled or not: the loader keeps it only when enabled and clean). `plans`: the plan ids the
 * loader kept, with whether each is a free trial (sold only by the trial method).
 */
export function readTollgateSection(r: SectionReader, plans: ReadonlyMap<string, { trial: boolean }>): TollgateConfig {
  const d = TOLLGATE_DEFAULTS;
  const listen = r.parsed('listen', { host: '', port: 0 }, (v) =>
    v === '' ? { ok: true, value: { host: '', port: 0 } } : parseListen(v, 2121),
  );
  const plan = r.required(
    'plan',
    '',
    (v) => {
      const p = plans.get(v);
      if (!p)
        return {
          ok: false,
          reason: `must name a valid plan (config pricing '<id>'); plans: ${[...plans.keys()].join(', ') || 'none'}`,
        };
      if (p.trial)
        return {
          ok: false,
          reason: 'names a free-trial plan (trial_every): those are given by the trial method, not sold',
        };
      return { ok: true, value: v };
    },
    "is required: the plan sold over TollGate (config pricing '<id>')",
  );
  const mints: string[] = [];
  const raw = r.raw('mint');
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  for (const text of list) {
    const m = mintUrl(text);
    if (!m.ok) r.report('mint', m.reason, text);
    else if (!mints.includes(m.value)) mints.push(m.value);
  }
  if (raw === undefined) r.report('mint', "is required: list mint 'https://…', one line per accepted mint");
  const unit = r.parsed('unit', d.unit, (v): Parsed<'sat'> =>
    v === 'sat'
      ? { ok: true, value: 'sat' }
      : { ok: false, reason: "must be 'sat' (the only Cashu unit sluice takes)" },
  );
  const pricePerStep = r.required(
    'price_per_step',
    1n,
    sats(1n, ' (a price of 0 gives the network away)'),
    'is required: the price of one step of the plan, in sat',
  );
  const minSteps = r.parsed('min_steps', d.min_steps, steps);
  const maxSteps = r.parsed<bigint | null>('max_steps', null, steps);
  if (maxSteps !== null && maxSteps < minSteps)
    r.report('max_steps', `must be at least min_steps (${minSteps})`, String(maxSteps));
  const maxBalance = r.parsed('max_balance', d.max_balance, sats(1n, ''));
  // One purchase must fit under the cap, or the method could never sell anything.
  if (pricePerStep * minSteps > maxBalance)
    r.report(
      'max_balance',
      `must be at least price_per_step × min_steps (${pricePerStep * minSteps} sat)`,
      String(maxBalance),
    );
  return {
    enabled: true,
    listen,
    plan,
    mints,
    unit,
    pricePerStep,
    minSteps,
    maxSteps,
    maxBalance,
    payoutAddress: r.parsed('payout_address', '', payoutAddress),
    payoutMin: r.parsed('payout_min', d.payout_min, sats(1n, '')),
  };
}
