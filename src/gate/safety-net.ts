/**
 * The limits handed to the portal when a gate opens, so the portal closes it by itself if sluice is gone (crash, power
 * cut of the daemon but not the portal). sluice's meter is the primary enforcement; this is the backstop.
 *
 * openNDS cannot change a client's quota or timeout without a re-auth, and a top-up must never re-auth (it fails on an
 * Authenticated client). So the net is set with headroom: twice what is left, plus a fixed margin. A top-up larger than
 * that headroom makes the portal cut the client at the old net; the meter then sees the paying client unauthenticated
 * and re-opens it with a new net (a short interruption in that rare case, never free access).
 */
import type { SafetyNet } from '../portal/index.ts';
import type { Session } from '../sessions/index.ts';
import { remaining } from '../sessions/index.ts';

const DATA_MARGIN_BYTES = 10n * 1024n * 1024n;
const TIME_MARGIN_SECONDS = 300n;

export function safetyNetFor(session: Session, now: number): SafetyNet {
  const left = remaining(session, now);
  if (session.metric === 'bytes') {
    const kib = Number((2n * left + DATA_MARGIN_BYTES + 1023n) / 1024n);
    return { downloadQuotaKiB: kib, uploadQuotaKiB: kib, dataBytes: Number(left) };
  }
  const minutes = Number((2n * left + TIME_MARGIN_SECONDS + 59n) / 60n);
  return { sessionMinutes: Math.max(1, minutes) };
}
