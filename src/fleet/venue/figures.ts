/**
 * What the lease service reads of a router's message (docs/roaming.md): its venue claims and command replies as maps,
 * whole numbers as decimal text, and a session's figures (a release reply, or a session message). Pure.
 */
import { Unpackr } from 'msgpackr';
import type { Inbound } from '../collector/index.ts';
import type { Figures, Lease } from './leases.ts';

const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number', mapsAsObjects: true });

export function decodeMap(payload: Buffer): Record<string, unknown> | null {
  let body: unknown;
  try {
    body = payload[0] === 0x7b ? JSON.parse(payload.toString('utf8')) : unpackr.unpack(payload);
  } catch {
    return null;
  }
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
}

export const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export const decimal = (v: unknown): string | null =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
    ? String(v)
    : typeof v === 'string' && /^(0|[1-9][0-9]{0,30})$/.test(v)
      ? v
      : null;
const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function sessionFields(
  s: NonNullable<Extract<Inbound, { kind: 'session' }>['session']>,
): Record<string, unknown> {
  return {
    metric: s.metric,
    allotment: s.allotment,
    used: s.used,
    remaining: s.remaining,
    bytes: s.bytes,
    expires_at: s.expiresAt,
    rate_down: s.rateDown,
    rate_up: s.rateUp,
    user: s.user,
    plan: s.plan,
  };
}

/** A router's figures of its session (its release reply, or a session message), or null when they do not read. */
export function figuresOf(r: Record<string, unknown> | null): Figures | null {
  if (r === null) return null;
  const metric = r['metric'];
  const allotment = decimal(r['allotment']);
  const used = decimal(r['used']);
  const remaining = decimal(r['remaining']);
  if ((metric !== 'bytes' && metric !== 'seconds') || allotment === null || used === null || remaining === null)
    return null;
  const devices = numOrNull(r['devices']);
  return {
    metric,
    allotment,
    used,
    remaining,
    bytes: decimal(r['bytes']) ?? '0',
    expiresAt: numOrNull(r['expires_at']),
    rateDown: numOrNull(r['rate_down']),
    rateUp: numOrNull(r['rate_up']),
    devices: devices !== null && devices >= 1 ? Math.floor(devices) : 1,
    user: typeof r['user'] === 'string' ? r['user'] : null,
    plan: typeof r['plan'] === 'string' ? r['plan'] : null,
    at: numOrNull(r['at']) ?? Date.now(),
  };
}

/** `venue_open`'s arguments: the lease moved to its holder from `from`, with what is left and what was sold. */
export function openArgs(lease: Lease, from: string): Record<string, unknown> {
  return {
    mac: lease.mac,
    venue: lease.venue,
    lease: lease.id,
    epoch: lease.epoch,
    from,
    metric: lease.metric,
    remaining: lease.remaining,
    used: lease.used,
    allotment: lease.allotment,
    // What the venue session was bought for: the receiving router opens nothing larger.
    sold: lease.sold,
    expires_at: lease.expiresAt,
    rate_down: lease.rateDown,
    rate_up: lease.rateUp,
    devices: lease.devices,
    user: lease.user,
    plan: lease.plan,
  };
}
