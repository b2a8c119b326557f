/**
 * The RFC 8908 captive portal API: one JSON object (media type application/captive+json) telling the requesting client
 * whether it is captive and, once it is not, what is left of its session. Phones that learnt the API's URL from DHCP
 * option 114 or the RA option (RFC 8910; docs/captive-portal.md) ask it instead of guessing from a probe page, and show
 * the portal, the time left and a "renew" prompt from it. Pure: the endpoint looks up the client and serves the answer.
 */
import { isLive, type Session } from '../sessions/index.ts';

export const CAPTIVE_MEDIA_TYPE = 'application/captive+json';

/** RFC 8908 §5's keys (only those sluice can fill). */
export interface CaptiveAnswer {
  captive: boolean;
  'user-portal-url'?: string;
  'venue-info-url'?: string;
  'can-extend-session'?: boolean;
  'seconds-remaining'?: number;
  'bytes-remaining'?: number;
}

export interface CaptiveInput {
  /** The client's live or latest session (null: none, or the portal does not list the client). */
  session: Session | null;
  portalUrl: string;
  venueUrl: string;
  /** The page sells something now (a running scheme that sells, an offered form): a session can be extended there. */
  canSell: boolean;
  now: number;
}

/**
 * Captive unless an ACTIVE session holds the gate. Remaining figures only for such a session: seconds for a time
 * session (or a data session's hard deadline; whole seconds, rounded down), bytes for a data session, as JSON numbers
 * (clamped to 2^53 - 1).
 */
export function captiveAnswer(input: CaptiveInput): CaptiveAnswer {
  const s = input.session;
  const active = s !== null && isLive(s) && s.state === 'ACTIVE';
  const answer: CaptiveAnswer = { captive: !active, 'user-portal-url': input.portalUrl };
  if (input.venueUrl !== '') answer['venue-info-url'] = input.venueUrl;
  if (!active) return answer;
  answer['can-extend-session'] = input.canSell;
  if (s.expiresAt !== null) {
    // Rounded down, never up: the deadline is the opening rounded up to a whole second (sessions/limits.ts), so a
    // 600 s grant asked at once has 600.x s left, and a client must never be shown more than was sold. A time
    // session's allotment bounds it too (a deadline moved by a restart or a clock step is not more time sold).
    let seconds = Math.max(0, Math.floor((s.expiresAt - input.now) / 1000));
    if (s.metric === 'seconds') seconds = Math.min(seconds, Number(s.allotment));
    answer['seconds-remaining'] = seconds;
  }
  if (s.metric === 'bytes') {
    const left = s.allotment - BigInt(Math.min(s.used, Number.MAX_SAFE_INTEGER));
    answer['bytes-remaining'] =
      left <= 0n ? 0 : left > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(left);
  }
  return answer;
}
