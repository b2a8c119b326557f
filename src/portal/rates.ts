/**
 * Client rates (speed tiers) as text: `2mbit`, `512kbit`, `8M` → bits per second. The units are tc's and MikroTik's
 * (decimal, of bits: 1mbit = 1 000 000 bit/s), so a plan's `rate_down 2mbit` means what an operator reads off their
 * router's other tools. A rate is of IP bytes, the unit the portal's counters and the kernel quota count.
 */

/** The lowest and highest rate sluice enforces: below 8 kbit/s TCP stalls; above 10 Gbit/s no home LAN reaches. */
export const MIN_RATE_BPS = 8_000;
export const MAX_RATE_BPS = 10_000_000_000;

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  bit: 1,
  bps: 1,
  k: 1e3,
  kbit: 1e3,
  kbps: 1e3,
  m: 1e6,
  mbit: 1e6,
  mbps: 1e6,
  g: 1e9,
  gbit: 1e9,
  gbps: 1e9,
};

export type RateParse = { ok: true; bps: number } | { ok: false; reason: string };

export const RATE_REASON =
  `must be a rate from ${MIN_RATE_BPS / 1000}kbit to ${MAX_RATE_BPS / 1e9}gbit: a number of bits per second with ` +
  'a unit (2mbit, 512kbit, 8M)';

/** `2mbit`, `1.5M`, `512kbit`, `2000000` (bit/s) → whole bits per second, within MIN..MAX_RATE_BPS. */
export function parseRate(text: string): RateParse {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m === null ? undefined : UNITS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) return { ok: false, reason: RATE_REASON };
  const bps = Math.round(Number(m[1]) * unit);
  if (!Number.isFinite(bps) || bps < MIN_RATE_BPS || bps > MAX_RATE_BPS) return { ok: false, reason: RATE_REASON };
  return { ok: true, bps };
}

/** bits per second → the shortest exact text parseRate reads back (`2mbit`, `1500kbit`, `12345bit`). */
export function formatRate(bps: number): string {
  for (const [unit, f] of [
    ['gbit', 1e9],
    ['mbit', 1e6],
    ['kbit', 1e3],
  ] as const) {
    if (bps >= f && bps % f === 0) return `${bps / f}${unit}`;
  }
  return `${bps}bit`;
}

/** A client's rates in bits per second; null: not limited that way. */
export interface ClientRates {
  downBps: number | null;
  upBps: number | null;
}

export const NO_RATES: ClientRates = Object.freeze({ downBps: null, upBps: null });

export function hasRates(r: ClientRates | null | undefined): r is ClientRates {
  return r != null && (r.downBps !== null || r.upBps !== null);
}
