/**
 * Why each refusal, deauth and end on the demo's screen happened, in words a newcomer reads without the docs: the
 * daemon's log lines and event codes say what, the demo knows why (it made the traffic and the bad purchase).
 */

import type { EndCause } from '../sessions/index.ts';

/**
 * The one purchase the demo sends wrong on purpose, as a portal with a bug would: an amount below the plan's minimum.
 */
export const DELIBERATE_BAD_MAC = '02:de:ad:be:ef:00';

/** What each end cause (`end_cause` of `sluice.session`) means. */
const END_CAUSES: Record<EndCause, string> = {
  'data-limit': 'its data was used up',
  'time-limit': 'its time ran out',
  admin: 'an admin terminated it',
  disconnect: 'a RADIUS Disconnect ended it',
  'pc-logout': 'the client logged out on the portal',
  'device-limit': 'the same user started it on more devices than limits.max_devices_per_user',
  'portal-lost': 'the client left the portal',
  moved: 'the device went to another router of the venue, which goes on with what was left',
};

export function endCauseText(cause: string | null): string {
  return cause === null ? 'ended' : `${cause}: ${END_CAUSES[cause as EndCause] ?? 'ended'}`;
}

/** A refused purchase, with its code and why. */
export function refusalText(mac: string, code: string, message?: string): string {
  const why =
    mac === DELIBERATE_BAD_MAC
      ? `deliberate: the demo sends an amount below the plan's minimum, as a portal with a bug ` +
        `would${message ? `; the daemon: ${message}` : ''}`
      : (message ?? 'refused by the daemon');
  return `purchase refused for ${mac}: ${code} (${why})`;
}

const field = (line: string, key: string): string | undefined =>
  new RegExp(`\\b${key}=("[^"]*"|\\S+)`).exec(line)?.[1]?.replace(/^"|"$/g, '');

/**
 * The demo's event line for a daemon log line, or undefined to leave it out. "gate closed" alone says no why: the
 * session's end (its own event line, with its cause) or an unpaid open gate (the line before) does, so it is left out.
 * The rest shown is what went wrong (a close that failed, a portal that cannot be reached), as the daemon says it.
 */
export function explainLogLine(line: string): string | undefined {
  if (/gate open without a session: closing/.test(line)) {
    return (
      `x ${field(line, 'mac') ?? '?'} gate closed: open on the portal without a paid session (the simulator lets ` +
      'a few clients in unpaid)'
    );
  }
  if (/reconciled with portal/.test(line)) {
    const deauthed = Number(field(line, 'deauthed') ?? 0);
    return deauthed > 0
      ? `start-up: closed the gates of ${deauthed} client${deauthed === 1 ? '' : 's'} the portal had open ` +
          'without a paid session (the simulator starts some clients authenticated)'
      : 'start-up: portal reconciled, no unpaid client open';
  }
  // A refused call: the demo's own refusal line carries its code and the daemon's reason.
  if (/gate closed|call failed method=purchase/.test(line)) return undefined;
  if (/portal lost|cannot|failed/.test(line)) return line;
  return undefined;
}
