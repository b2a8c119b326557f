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
  /** The page sells something now (x402, batch-settlement or vouchers): a session can be extended there. */
  canSell: boolean;
  now: number;
}

/**
 * Captive unless an ACTIVE session holds the gate. Remaining figures only for such a session: seconds for a time
 * session (or a data session's hard deadline), bytes for a data session, as JSON numbers (clamped to 2^53 - 1).
 */
export function captiveAnswer(input: CaptiveInput): CaptiveAnswer {
  const s = input.session;
  const active = s !== null && isLive(s) && s.state === 'ACTIVE';
  const answer: CaptiveAnswer = { captive: !active, 'user-portal-url': input.portalUrl };
  if (input.venueUrl !== '') answer['venue-info-url'] = input.venueUrl;
  if (!active) return answer;
  answer['can-extend-session'] = input.canSell;
  if (s.expiresAt !== null) answer['seconds-remaining'] = Math.max(0, Math.ceil((s.expiresAt - input.now) / 1000));
  if (s.metric === 'bytes') {
    const left = s.allotment - BigInt(Math.min(s.used, Number.MAX_SAFE_INTEGER));
    answer['bytes-remaining'] = left <= 0n ? 0 : left > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(left);
  }
  return answer;
}
