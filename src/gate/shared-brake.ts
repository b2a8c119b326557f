/**
 * The kernel quota at a gate's opening (the valve's brake). A device of a multi-device purchase does not get the
 * purchase's whole bytes left, as a single device does: the bytes left are split evenly between it and the purchase's
 * devices the kernel already brakes (their quotas lowered first, then its own installed), so at no moment do the
 * quotas together let more through than is left. Waiting for the meter's next split (meter/shared-quota.ts) would let
 * two devices pass up to twice the remainder meanwhile: seen in the lab, 302 KiB past a 4 MiB purchase when the
 * tick after the join was late. From the next tick the meter's split follows each device's demand.
 */
import { devicesOf, type Session } from '../sessions/index.ts';

export interface SharedBrakeQuota {
  has(mac: string): boolean;
  set(mac: string, ip: string | null, limitBytes: number): Promise<void>;
  share(shares: ReadonlyArray<{ mac: string; shareBytes: number }>): Promise<void>;
}

export async function brakeAtOpening(
  quota: SharedBrakeQuota,
  sessionOf: (mac: string) => Pick<Session, 'mac' | 'devices'> | null,
  mac: string,
  ip: string | null,
  leftBytes: number,
): Promise<void> {
  const session = sessionOf(mac);
  const braked = session === null ? [] : devicesOf(session).filter((m) => m !== mac && quota.has(m));
  if (braked.length === 0 || ip === null) {
    await quota.set(mac, ip, leftBytes);
    return;
  }
  const each = Math.floor(Math.max(0, leftBytes) / (braked.length + 1));
  await quota.share(braked.map((m) => ({ mac: m, shareBytes: each })));
  await quota.set(mac, ip, each);
}
