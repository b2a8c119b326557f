/**
 * What goes into the outbox for RADIUS accounting, and how a queued record becomes an Accounting-Request when it is
 * (re)sent. The record keeps the facts as of the event (times, octets, cause); the packet is built per attempt so
 * Acct-Delay-Time says how long the record waited (RFC 2866 §5.2), and NAS attributes follow the running config.
 */
import type { EndCause } from '../../sessions/index.ts';
import {
  nasAttributes,
  rfc3580Mac,
  splitOctets,
  type AttributeInput,
  type NasIdentity,
  type TERMINATE_CAUSE,
} from '../../radius/index.ts';

export type AcctKind = 'Start' | 'Interim-Update' | 'Stop';

export interface AcctRecord {
  kind: AcctKind;
  /** Acct-Session-Id: the session id (16 hex digits, unique per router). */
  sessionId: string;
  /**
   * Acct-Multi-Session-Id: in a venue (roaming.md), the venue session this router's session is a part of (its lease id,
   * `<router sold at>/<session id there>`), the same at every router it moves through.
   */
  multiSessionId?: string;
  user: string;
  mac: string;
  ip: string | null;
  /** Event time, ms since the epoch (Event-Timestamp; Acct-Delay-Time counts from it). */
  at: number;
  /** Acct-Session-Time in seconds (0 for Start). */
  sessionTime: number;
  /** NAS view (RFC 2866): input = bytes from the client (its upload), output = bytes to the client. */
  inputOctets: bigint;
  outputOctets: bigint;
  cause?: keyof typeof TERMINATE_CAUSE;
  /** Class attributes from the Access-Accept, base64. */
  classes?: string[];
  /** Start only: the session's speed tier, bits per second (null: not limited that way), as WISPr-Bandwidth-Max-*. */
  rates?: { down: number | null; up: number | null };
}

/** RFC 2866 §5.10 causes for sluice's end causes. A data limit is Session-Timeout, as CoovaChilli reports it. */
export const TERMINATE_CAUSE_OF: Readonly<Record<EndCause, keyof typeof TERMINATE_CAUSE>> = {
  'time-limit': 'Session-Timeout',
  'data-limit': 'Session-Timeout',
  admin: 'Admin-Reset',
  disconnect: 'Admin-Reset',
  'pc-logout': 'User-Request',
  // The same user started on another device and this one was pushed out: the port was taken by a session with more
  // right to it (RFC 2866: Port-Preempted), not reset by an administrator.
  'device-limit': 'Port-Preempted',
  'portal-lost': 'Lost-Carrier',
  // Handed to another router of the venue: this NAS's port is no longer needed, the session goes on there.
  moved: 'Port-Unneeded',
};

export function encodeRecord(r: AcctRecord): Uint8Array {
  return Buffer.from(
    JSON.stringify({ ...r, inputOctets: r.inputOctets.toString(), outputOctets: r.outputOctets.toString() }),
  );
}

/** Throws on anything that is not a record this module wrote (the caller drops it and counts it). */
export function decodeRecord(payload: Uint8Array): AcctRecord {
  const o = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
  const str = (k: string): string => {
    if (typeof o[k] !== 'string') throw new Error(`record field ${k} is not a string`);
    return o[k];
  };
  const num = (k: string): number => {
    if (typeof o[k] !== 'number' || !Number.isSafeInteger(o[k]) || o[k] < 0)
      throw new Error(`record field ${k} is not a count`);
    return o[k];
  };
  const kind = str('kind');
  if (kind !== 'Start' && kind !== 'Interim-Update' && kind !== 'Stop') throw new Error(`unknown record kind ${kind}`);
  const r: AcctRecord = {
    kind,
    sessionId: str('sessionId'),
    user: str('user'),
    mac: str('mac'),
    ip: typeof o['ip'] === 'string' ? o['ip'] : null,
    at: num('at'),
    sessionTime: num('sessionTime'),
    inputOctets: BigInt(str('inputOctets')),
    outputOctets: BigInt(str('outputOctets')),
  };
  if (typeof o['multiSessionId'] === 'string') r.multiSessionId = o['multiSessionId'];
  if (typeof o['cause'] === 'string') r.cause = o['cause'] as AcctRecord['cause'] & string;
  if (Array.isArray(o['classes']))
    r.classes = (o['classes'] as unknown[]).filter((c): c is string => typeof c === 'string');
  // Absent in records queued before Starts carried rates; an unreadable one is left out, the record still sent.
  const rates = o['rates'] as { down?: unknown; up?: unknown } | undefined;
  const rate = (v: unknown): number | null =>
    typeof v === 'number' && Number.isSafeInteger(v) && v > 0 && v <= 0xffffffff ? v : null;
  if (rates !== null && typeof rates === 'object') r.rates = { down: rate(rates.down), up: rate(rates.up) };
  return r;
}

/** The Accounting-Request's attributes for one attempt at `now`. */
export function accountingAttributes(r: AcctRecord, nas: NasIdentity, now: number): AttributeInput[] {
  const attrs: AttributeInput[] = [
    ['Acct-Status-Type', r.kind],
    ['Acct-Session-Id', r.sessionId],
    ['User-Name', r.user],
    ...nasAttributes(nas),
    ['Calling-Station-Id', rfc3580Mac(r.mac)],
    ['Acct-Authentic', 'RADIUS'],
    ['Event-Timestamp', Math.floor(r.at / 1000)],
    ['Acct-Delay-Time', Math.min(0xffffffff, Math.max(0, Math.floor((now - r.at) / 1000)))],
  ];
  if (r.multiSessionId !== undefined) attrs.push(['Acct-Multi-Session-Id', r.multiSessionId]);
  if (r.ip !== null && /^\d+\.\d+\.\d+\.\d+$/.test(r.ip)) attrs.push(['Framed-IP-Address', r.ip]);
  for (const c of r.classes ?? []) attrs.push(['Class', Buffer.from(c, 'base64')]);
  if (r.kind !== 'Start') {
    const [inLow, inHigh] = splitOctets(r.inputOctets);
    const [outLow, outHigh] = splitOctets(r.outputOctets);
    attrs.push(
      ['Acct-Session-Time', r.sessionTime],
      ['Acct-Input-Octets', inLow],
      ['Acct-Output-Octets', outLow],
      ['Acct-Input-Gigawords', inHigh],
      ['Acct-Output-Gigawords', outHigh],
    );
  }
  if (r.kind === 'Stop' && r.cause !== undefined) attrs.push(['Acct-Terminate-Cause', r.cause]);
  // The tier the session starts with, as CoovaChilli reports it (WISPr, bits per second; a 32-bit integer: 10 Gbit/s,
  // sluice's largest rate, does not fit and is left out).
  if (r.kind === 'Start' && r.rates) {
    if (r.rates.down !== null && r.rates.down <= 0xffffffff) attrs.push(['WISPr-Bandwidth-Max-Down', r.rates.down]);
    if (r.rates.up !== null && r.rates.up <= 0xffffffff) attrs.push(['WISPr-Bandwidth-Max-Up', r.rates.up]);
  }
  return attrs;
}
