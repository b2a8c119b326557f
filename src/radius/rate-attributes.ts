/**
 * THE reading of a RADIUS speed tier, for a voucher's Access-Accept and a CoA-Request alike (one rule, so the two never
 * disagree): WISPr-Bandwidth-Max-Down/-Up (bits per second, as CoovaChilli reads them) and Mikrotik-Rate-Limit.
 *
 * Mikrotik-Rate-Limit, as MikroTik documents it: `rx-rate[/tx-rate] [rx-burst-rate[/tx-burst-rate] …]` from the
 * router's point of view, so rx is the client's upload and tx its download; rates are numbers with an optional `k`
 * (1,000s) or `M` (1,000,000s) (and `G`); "If tx-rate is not specified, rx-rate is as tx-rate too": `2M` limits both
 * directions. Burst rates, thresholds, times and priority follow the first field: sluice enforces the rates alone.
 *
 * Three answers per direction: absent (undefined: the attributes do not say), a rate, or **no limit** (null): a zero.
 * MikroTik documents `0` as "no limit", and CoovaChilli shapes a direction only when its WISPr value is not 0. With
 * both attributes, the tighter per direction: the smaller rate, and a rate rather than no limit.
 *
 * Pure, never throws: what it cannot use goes to `problems`, and that direction reads as absent. The callers differ
 * only in what a problem does: a voucher is granted with it logged; a CoA is refused whole.
 */
import type { AttributeReader } from './packet.ts';

/** One direction: bits per second; null no limit; undefined absent (or unusable, with a problem). */
export type RateDirection = number | null | undefined;

/** The rates sluice can enforce (the caller's bounds: portal/rates.ts MIN_RATE_BPS, MAX_RATE_BPS). */
export interface RateBounds {
  min: number;
  max: number;
}

export interface RateAttributes {
  downBps: RateDirection;
  upBps: RateDirection;
  /** What was unusable, and why (empty: all of it read). */
  problems: string[];
}

/** MikroTik's units: a number of bits per second, `k` thousands, `M` millions (`G` billions). */
const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };
const RATE = /^(\d+(?:\.\d+)?)([kmg]?)$/i;

/** Pure: a Mikrotik-Rate-Limit text → the client's upload (rx) and download (tx). */
export function parseMikrotikRateLimit(text: string, bounds: RateBounds, problems: string[] = []): RateAttributes {
  const first = text.trim().split(/\s+/)[0] ?? '';
  const parts = first.split('/');
  if (first === '' || first === '/' || parts.length > 2) {
    problems.push(`Mikrotik-Rate-Limit "${text.slice(0, 64)}" is not rx-rate[/tx-rate]`);
    return { downBps: undefined, upBps: undefined, problems };
  }
  const one = (part: string, what: string): RateDirection => {
    if (part === '') return undefined;
    const m = RATE.exec(part);
    if (m !== null && Number(m[1]) === 0) return null; // `0`, `0k`, `0M`: not a rounding of 0.4 bit/s to zero
    const bps = m === null ? NaN : Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
    if (Number.isFinite(bps) && bps >= bounds.min && bps <= bounds.max) return bps;
    problems.push(
      `Mikrotik-Rate-Limit ${what} "${part.slice(0, 32)}" is unusable: must be 0 (no limit) or a rate from ` +
        `${bounds.min / 1000}k to ${bounds.max / 1e9}G bits per second (a number with k or M)`,
    );
    return undefined;
  };
  const rx = parts[0]!;
  const tx = parts[1] ?? '';
  const upBps = one(rx, tx === '' ? 'rx (upload; tx left out, so the download too)' : 'rx (upload)');
  // tx left out (`2M`, `2M/`) is rx's value, as MikroTik documents; `/4M`, no rx, sets the download alone.
  return { upBps, downBps: tx === '' ? upBps : one(tx, 'tx (download)'), problems };
}

/** Pure: a packet's rate attributes → each direction, the tighter where both attributes set it. */
export function readRateAttributes(reader: AttributeReader, bounds: RateBounds): RateAttributes {
  const problems: string[] = [];
  const wispr = (name: 'WISPr-Bandwidth-Max-Down' | 'WISPr-Bandwidth-Max-Up'): RateDirection => {
    let v: number | undefined;
    try {
      v = reader.integer(name);
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
      return undefined;
    }
    if (v === undefined) return undefined;
    if (v === 0) return null;
    if (v < bounds.min || v > bounds.max) {
      problems.push(
        `${name} ${v} is out of range: must be 0 (no limit) or ${bounds.min} to ${bounds.max} bits per second`,
      );
      return undefined;
    }
    return v;
  };
  const down = wispr('WISPr-Bandwidth-Max-Down');
  const up = wispr('WISPr-Bandwidth-Max-Up');
  let text: string | undefined;
  try {
    text = reader.string('Mikrotik-Rate-Limit');
  } catch (err) {
    problems.push(`Mikrotik-Rate-Limit: ${(err as Error).message}`);
  }
  const mikrotik =
    text === undefined ? { downBps: undefined, upBps: undefined } : parseMikrotikRateLimit(text, bounds, problems);
  return { downBps: tighter(down, mikrotik.downBps), upBps: tighter(up, mikrotik.upBps), problems };
}

/** Both given: a rate rather than no limit, the smaller of two rates. */
function tighter(a: RateDirection, b: RateDirection): RateDirection {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a === null || b === null) return a ?? b;
  return Math.min(a, b);
}
