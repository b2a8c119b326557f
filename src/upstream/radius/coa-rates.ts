/**
 * A CoA-Request's new speed tier (issue 27 item 2): which rates it sets, read with the same reader as a voucher's
 * Access-Accept (payments' ratesFromAccept: WISPr-Bandwidth-Max-Down/-Up in bits per second, Mikrotik-Rate-Limit
 * "rx/tx", the smaller per direction when both are given), and the port to the one rate-change path (ubus `change`).
 *
 * Where an Accept leaves a value it cannot use out (a voucher is never refused for its rate), a CoA is refused whole:
 * the server asked for a change sluice would not make, and answering ACK to half of it would tell it otherwise. A
 * direction the request does not set keeps its rate, as with ubus `change`; MikroTik's `0` ("no limit") sets nothing
 * either: a CoA lifts no tier (the Accept reader reads `0` as no value; ubus `change` with `none` lifts one).
 */
import { ratesFromAccept } from '../../payments/index.ts';
import { formatRate, type ClientRates } from '../../portal/index.ts';
import type { AttributeReader } from '../../radius/index.ts';
import type { Session } from '../../sessions/index.ts';

/** The directions a CoA sets, bits per second; a direction absent keeps the session's rate. */
export interface RateChange {
  downBps?: number;
  upBps?: number;
}

export type CoaRates = { ok: true; change: RateChange } | { ok: false; reason: string };

/** Pure: the request's rate attributes → the directions it sets (empty: none), or why they are unusable. */
export function coaRates(request: AttributeReader): CoaRates {
  const { rates, problems } = ratesFromAccept(request);
  if (problems.length > 0) return { ok: false, reason: problems.join('; ') };
  return { ok: true, change: rateChange(rates) };
}

function rateChange(rates: ClientRates | null): RateChange {
  return {
    ...(rates?.downBps != null && { downBps: rates.downBps }),
    ...(rates?.upBps != null && { upBps: rates.upBps }),
  };
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
 * reads back to the same bits per second (formatRate). A shaper that never started (no tier sold yet) is usable: it
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
        ...(change.downBps !== undefined && { rate_down: formatRate(change.downBps) }),
        ...(change.upBps !== undefined && { rate_up: formatRate(change.upBps) }),
      });
    },
  };
}
