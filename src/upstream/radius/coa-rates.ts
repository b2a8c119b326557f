/**
 * A CoA-Request's new speed tier (issue 27 item 2; issue 41 item 5: lifting one): which rates it sets, from
 * WISPr-Bandwidth-Max-Down/-Up (bits per second) and Mikrotik-Rate-Limit "rx[/tx] …" (from the router's side: rx is the
 * client's upload, tx its download), the smaller per direction when both are given, as a voucher's Access-Accept reads
 * them; and the port to the one rate-change path (ubus `change`).
 *
 * Three answers per direction, where an Accept needs two: absent (the direction keeps its rate, as with ubus `change`),
 * a rate, or **no limit**: a zero. MikroTik documents `0` as "no limit" for Mikrotik-Rate-Limit, and CoovaChilli shapes
 * a direction only when its WISPr-Bandwidth-Max value is not 0; a CoA with a zero lifts that direction's tier (ubus
 * `change` `none`). Against a rate, no limit is the larger: with both attributes the rate wins. A tx left out of
 * Mikrotik-Rate-Limit is rx's value, as MikroTik documents ("If tx-rate is not specified, rx-rate is as tx-rate too"):
 * `0` alone lifts both directions, `2M` sets both.
 *
 * Where an Accept leaves a value it cannot use out (a voucher is never refused for its rate), a CoA is refused whole:
 * the server asked for a change sluice would not make, and answering ACK to half of it would tell it otherwise.
 */
import { formatRate, MAX_RATE_BPS, MIN_RATE_BPS, parseRate } from '../../portal/index.ts';
import type { AttributeReader } from '../../radius/index.ts';
import type { Session } from '../../sessions/index.ts';

/** The directions a CoA sets, bits per second; null: no limit (the tier lifted); absent: the session's rate kept. */
export interface RateChange {
  downBps?: number | null;
  upBps?: number | null;
}

export type CoaRates = { ok: true; change: RateChange } | { ok: false; reason: string };

/** One direction as a request gives it: undefined absent, null no limit, else bits per second. */
type Direction = number | null | undefined;

/** MikroTik's zero in any unit it writes (`0`, `0k`, `0M`): "no limit". */
const ZERO = /^0+(?:\.0+)?[kmg]?$/i;

/** Pure: the request's rate attributes → the directions it sets (empty: none), or why they are unusable. */
export function coaRates(request: AttributeReader): CoaRates {
  const problems: string[] = [];
  const down = wispr(request, 'WISPr-Bandwidth-Max-Down', problems);
  const up = wispr(request, 'WISPr-Bandwidth-Max-Up', problems);
  const mikrotik = mikrotikRateLimit(request, problems);
  if (problems.length > 0) return { ok: false, reason: problems.join('; ') };
  return { ok: true, change: rateChange(tighter(down, mikrotik.down), tighter(up, mikrotik.up)) };
}

function wispr(request: AttributeReader, name: 'WISPr-Bandwidth-Max-Down' | 'WISPr-Bandwidth-Max-Up', problems: string[]): Direction {
  let v: number | undefined;
  try { v = request.integer(name); } catch (err) {
    problems.push(`${name}: ${(err as Error).message}`);
    return undefined;
  }
  if (v === undefined) return undefined;
  if (v === 0) return null;
  if (v < MIN_RATE_BPS || v > MAX_RATE_BPS) {
    problems.push(`${name} ${v} is out of range: must be 0 (no limit) or ${MIN_RATE_BPS} to ${MAX_RATE_BPS} bits per second`);
    return undefined;
  }
  return v;
}

function mikrotikRateLimit(request: AttributeReader, problems: string[]): { down: Direction; up: Direction } {
  let text: string | undefined;
  try { text = request.string('Mikrotik-Rate-Limit'); } catch (err) {
    problems.push(`Mikrotik-Rate-Limit: ${(err as Error).message}`);
  }
  if (text === undefined) return { down: undefined, up: undefined };
  // Burst rates, thresholds, times and priority follow the first field: sluice enforces the rates alone.
  const first = text.trim().split(/\s+/)[0] ?? '';
  const parts = first.split('/');
  if (first === '' || first === '/' || parts.length > 2) {
    problems.push(`Mikrotik-Rate-Limit "${text.slice(0, 64)}" is not rx[/tx]`);
    return { down: undefined, up: undefined };
  }
  const one = (part: string, what: string): Direction => {
    if (part === '') return undefined;
    if (ZERO.test(part)) return null;
    const p = parseRate(part);
    if (p.ok) return p.bps;
    problems.push(`Mikrotik-Rate-Limit ${what} "${part.slice(0, 32)}" is unusable: ${p.reason}, or 0 for no limit`);
    return undefined;
  };
  const rx = parts[0]!;
  // `/4M` (no rx) sets the download alone, as the Accept reader reads it.
  const tx = parts[1] === undefined || parts[1] === '' ? rx : parts[1];
  return { up: one(rx, 'rx (upload)'), down: one(tx, 'tx (download)') };
}

/** Both given: the rate rather than no limit, the smaller of two rates. */
function tighter(a: Direction, b: Direction): Direction {
  if (a === undefined) return b;
  if (b === undefined || b === null) return a;
  return a === null ? b : Math.min(a, b);
}

function rateChange(down: Direction, up: Direction): RateChange {
  return { ...(down !== undefined && { downBps: down }), ...(up !== undefined && { upBps: up }) };
}

/** What a CoA's rates need from the daemon. */
export interface DasRates {
  /** False: no speed tier can be set on this router now (tc/nft refused and the shaper turned itself off). */
  usable(): boolean;
  /** THE rate-change path (ubus `change` rate_down/rate_up): the session's new rates, in force when it resolves. */
  change(session: Session, change: RateChange): Promise<void>;
}

/** The part of the shaper `usable` reads (portal/shaper.ts stats()). */
export interface ShaperFigures {
  stats(): { enabled?: number | boolean; failures?: number | boolean };
}

/**
 * The port for a daemon with a shaper: rates go through the admin method `change` exactly as a ubus call would (same
 * argument checks, same backend path, the same journal: on flash before the kernel hears of it), each set direction as the text `change`
 * reads back to the same bits per second (formatRate), a lifted one as `none`. A shaper that never started (no tier sold yet) is usable: it
 * starts on its first client; one that started and failed is off until a restart.
 */
export function ubusChangeRates(shaper: ShaperFigures, command: (name: string, args: Record<string, unknown>) => Promise<unknown>): DasRates {
  return {
    usable: () => {
      const { enabled, failures } = shaper.stats();
      return enabled === true || failures === 0;
    },
    change: async (session, change) => {
      await command('change', {
        id: session.id,
        ...(change.downBps !== undefined && { rate_down: change.downBps === null ? 'none' : formatRate(change.downBps) }),
        ...(change.upBps !== undefined && { rate_up: change.upBps === null ? 'none' : formatRate(change.upBps) }),
      });
    },
  };
}
