/**
 * What a venue router knows of a MAC's venue session elsewhere, and the timing of its claims (venue-roaming.ts).
 */
/** What this router knows of a MAC's venue session elsewhere (the fleet's last answer), for the pay page. */
export interface VenueState {
  state: 'asking' | 'none' | 'held' | 'releasing' | 'held-here' | 'unreachable';
  holder: string | null;
  since: number | null;
  /** When the fleet said so (asking: when asked). */
  at: number;
  /** When this router last asked. */
  askedAt: number;
  /** Plan → when (ms) the device last had that free trial anywhere in the venue, as the fleet said. */
  trials?: Record<string, number>;
  /** The answer to a claim that asked for a trial: whether the venue holds it for this router's sale. */
  trial?: TrialHold;
}

/** The venue's hold on a trial a claim asked for: held for this router, or not (`until`: another router's hold). */
export interface TrialHold {
  plan: string;
  reserved: boolean;
  until?: number;
}

/** MACs whose state is kept (oldest dropped first). */
export const MAX_STATES = 4096;
/** A claim with no answer for this long: the fleet or the broker is unreachable. */
export const ANSWER_WAIT_MS = 3000;
/** Claims for one MAC are sent at most this often. */
export const RECLAIM_MS = 1000;
/**
 * While a MAC met here is told its session is held elsewhere (or no answer came), the router claims it again this
 * often by itself: the holder gives it up once the device has left it for `present_window`, and then the gate here
 * opens without the customer doing anything.
 */
export const VENUE_RETRY_MS = 2000;
/** A MAC is claimed again by the router for this long after it was last met here (a request of its pay page). */
export const PURSUE_MS = 120_000;
/** A sale waits this long at most for the fleet's first answer about a MAC never asked about (then: unreachable). */
export const SALE_WAIT_STEP_MS = 50;
