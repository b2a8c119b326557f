/**
 * The kernel quota at a gate's opening (the valve's brake). A device of a multi-device purchase does not get the
 * purchase's whole bytes left, as a single device does: the bytes left are split evenly between it and the purchase's
 * devices the kernel already brakes (their quotas lowered first, then its own installed), so at no moment do the
 * quotas together let more through than is left. Waiting for the meter's next split (meter/shared-quota.ts) would let
 * two devices pass up to twice the remainder meanwhile: seen in the lab, 302 KiB past a 4 MiB purchase when the
 * tick after the join was late. From the next tick the meter's split follows each device's demand.
 */
import type { BrakedSession } from '../portal/index.ts';
import { devicesOf, isLive, remainingNumber, type Session, type SessionReadView } from '../sessions/index.ts';

export interface SharedBrakeQuota {
  has(mac: string): boolean;
  set(mac: string, limitBytes: number): Promise<void>;
  share(shares: ReadonlyArray<{ mac: string; shareBytes: number }>): Promise<void>;
}

export async function brakeAtOpening(
  quota: SharedBrakeQuota,
  sessionOf: (mac: string) => Pick<Session, 'mac' | 'devices'> | null,
  mac: string,
  leftBytes: number,
): Promise<void> {
  const session = sessionOf(mac);
  const braked = session === null ? [] : devicesOf(session).filter((m) => m !== mac && quota.has(m));
  if (braked.length === 0) {
    await quota.set(mac, leftBytes);
    return;
  }
  const each = Math.floor(Math.max(0, leftBytes) / (braked.length + 1));
  await quota.share(braked.map((m) => ({ mac: m, shareBytes: each })));
  await quota.set(mac, each);
}

/**
 * What a client's kernel quota may let through when it is set from its session alone (portal/kernel-quota.ts: a table
 * rebuilt after a failed change, a used-up quota given a fresh count at a top-up, a quota carried over a restart): the
 * session's bytes left, and for a device of a multi-device purchase an even part of them, so that the devices' quotas
 * together never let more through than is left (each given the whole would let n devices pass n times the rest until
 * the meter's next split, meter/shared-quota.ts, follows their demand again). Null: no live data session.
 */
export function brakedSessionOf(
  sessions: Pick<SessionReadView, 'byMac'>,
  now: () => number = Date.now,
): (mac: string) => BrakedSession | null {
  return (mac) => {
    const s = sessions.byMac(mac);
    if (s === null || !isLive(s) || s.metric !== 'bytes') return null;
    const devices = devicesOf(s).length;
    const left = remainingNumber(s, now());
    return devices === 1
      ? { left, allotment: s.allotment }
      : { left: Math.floor(left / devices), allotment: s.allotment, devices };
  };
}
