/**
 * A CoA-Request's new speed tier (or lifting one) and the port to the one rate-change
 * path (ubus `change`). The attributes are read by THE rule a voucher's Access-Accept is read by
 * (src/radius/rate-attributes.ts: WISPr-Bandwidth-Max-Down/-Up, Mikrotik-Rate-Limit, a zero is no limit, tx left out
 * is rx). Three answers per direction: absent (the direction keeps its rate, as with ubus `change`), a rate, or no
 * limit (the tier lifted: ubus `change` `none`).
 *
 * Where an Accept leaves a value it cannot use out (a voucher is never refused for its rate), a CoA is refused whole:
 * the server asked for a change sluice would not make, and answering ACK to half of it would tell it otherwise.
 */
import { formatRate, MAX_RATE_BPS, MIN_RATE_BPS } from '../../portal/index.ts';
import { readRateAttributes, type AttributeReader, type RateDirection } from '../../radius/index.ts';
import type { Session } from '../../sessions/index.ts';

/** The directions a CoA sets, bits per second; null: no limit (the tier lifted); absent: the session's rate kept. */
export interface RateChange {
  downBps?: number | null;
  upBps?: number | null;
}

export type CoaRates = { ok: true; change: RateChange } | { ok: false; reason: string };

/** Pure: the request's rate attributes → the directions it sets (empty: none), or why they are unusable. */
export function coaRates(request: AttributeReader): CoaRates {
  const r = readRateAttributes(request, { min: MIN_RATE_BPS, max: MAX_RATE_BPS });
  if (r.problems.length > 0) return { ok: false, reason: r.problems.join('; ') };
  return { ok: true, change: rateChange(r.downBps, r.upBps) };
}

function rateChange(down: RateDirection, up: RateDirection): RateChange {
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
 * argument checks, same backend path, the same journal: on flash before the kernel hears of it), each set direction as
 * the text `change`
 * reads back to the same bits per second (formatRate), a lifted one as `none`. A shaper that never started (no tier
 * sold yet) is usable: it starts on its first client; one that started and failed is off until a restart.
 */
export function ubusChangeRates(
  shaper: ShaperFigures,
  command: (name: string, args: Record<string, unknown>) => Promise<unknown>,
): DasRates {
  return {
    usable: () => {
      const { enabled, failures } = shaper.stats();
      return enabled === true || failures === 0;
    },
    change: async (session, change) => {
      await command('change', {
        id: session.id,
        ...(change.downBps !== undefined && {
          rate_down: change.downBps === null ? 'none' : formatRate(change.downBps),
        }),
        ...(change.upBps !== undefined && { rate_up: change.upBps === null ? 'none' : formatRate(change.upBps) }),
      });
    },
  };
}
