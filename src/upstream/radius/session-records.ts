/**
 * What RADIUS accounting knows of a live session and the records it makes of it (accounting.ts queues and sends
 * them): its User-Name, when its next Interim is due, and each record's figures. sluice's metered total is the truth;
 * the per-direction counters only split it. Pure.
 */
import type { Session } from '../../sessions/index.ts';
import { rfc3580Mac } from '../../radius/index.ts';
import type { AcctKind, AcctRecord } from './records.ts';
import type { TrackedState } from './tracked-state.ts';

/**
 * A live session between events: what is saved across a restart (tracked-state.ts), when its Interim is due, and its
 * metered total as the session journal last wrote it (a checkpoint's; the journal's own after a restart).
 */
export interface Tracked extends TrackedState {
  nextInterimAt: number;
  writtenBytes: bigint;
}

export function accountingUserName(s: Pick<Session, 'user' | 'mac'>): string {
  return s.user ?? rfc3580Mac(s.mac);
}

/**
 * A session tracked from its start (or its creation, if it never started): its first Interim one interval on, its own
 * interval (a voucher's Acct-Interim-Interval) or else `defaultInterimMs`; no octets counted each way yet, its total
 * what the session has on record (`s.bytes`: 0 at a start, the journal's after a restart).
 */
export function trackSession(
  s: Session,
  o: { interimMs: number | null; classes: string[]; defaultInterimMs: number },
): Tracked {
  const startedAt = s.startedAt ?? s.createdAt;
  return {
    id: s.id,
    user: accountingUserName(s),
    mac: s.mac,
    ip: s.ip,
    startedAt,
    interimMs: o.interimMs,
    classes: o.classes,
    nextInterimAt: startedAt + (o.interimMs ?? o.defaultInterimMs),
    writtenBytes: BigInt(Math.round(s.bytes)),
    up: 0n,
    down: 0n,
  };
}

/**
 * The record for `t` at `at`. `total` is sluice's metered byte count (null: only what the meter's deltas said): the
 * upload counted, capped at the total, and the rest the download. A Start carries no time and no octets.
 */
export function recordOf(
  t: Tracked,
  kind: AcctKind,
  at: number,
  o: { total: bigint | null; multiSessionId: string | null },
): AcctRecord {
  let input = t.up;
  let output = t.down;
  if (o.total !== null) {
    if (input > o.total) input = o.total;
    output = o.total - input;
  }
  const r: AcctRecord = {
    kind,
    sessionId: t.id,
    user: t.user,
    mac: t.mac,
    ip: t.ip,
    at,
    sessionTime: kind === 'Start' ? 0 : sessionTime(t.startedAt, at),
    inputOctets: kind === 'Start' ? 0n : input,
    outputOctets: kind === 'Start' ? 0n : output,
  };
  if (t.classes.length > 0) r.classes = t.classes;
  if (o.multiSessionId !== null) r.multiSessionId = o.multiSessionId;
  return r;
}

/**
 * The Stop of a session accounting had started and the session store no longer knows (its state lost or reset): it
 * did not survive the restart, so it ends with NAS-Reboot and the octets last saved.
 */
export function lostSessionStop(prev: TrackedState, at: number): AcctRecord {
  return {
    kind: 'Stop',
    sessionId: prev.id,
    user: prev.user,
    mac: prev.mac,
    ip: prev.ip,
    at,
    sessionTime: sessionTime(prev.startedAt, at),
    inputOctets: prev.up,
    outputOctets: prev.down,
    cause: 'NAS-Reboot',
    classes: prev.classes,
  };
}

/**
 * What is saved of a tracked session (its next Interim is spread again at a restart, its total read again from the
 * journal).
 */
export function savedOf(t: Tracked): TrackedState {
  const { nextInterimAt: _due, writtenBytes: _total, ...saved } = t;
  return saved;
}

const sessionTime = (startedAt: number, at: number): number => Math.max(0, Math.floor((at - startedAt) / 1000));
