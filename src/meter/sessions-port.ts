/**
 * SessionsPort over the real SessionManager (src/sessions). Keeps its own MAC → session index from the manager's
 * events, so a tick costs Map lookups rather than copying every session (`list()` copies each one). Every device of a
 * multi-device session maps to that one session: each device's bytes are billed to its one allotment, whose sum the
 * manager ends at (`data-limit` for all devices at once).
 */
import {
  devicesOf,
  type Session,
  type SessionBillingPort,
  type SessionEventsView,
  type SessionReadView,
} from '../sessions/index.ts';
import type { MeteredSession, SessionsPort } from './ports.ts';

export type ManagerForMeter = SessionReadView & SessionEventsView & SessionBillingPort;

export interface ManagedSessionsPort extends SessionsPort {
  /** Stops following the manager's events. */
  dispose(): void;
}

export function sessionManagerPort(manager: ManagerForMeter): ManagedSessionsPort {
  const byMac = new Map<string, MeteredSession>();
  /** Live sessions with more than one device: their devices (the kernel quota splits their bytes left). */
  const shared = new Map<string, string[]>();
  const trackShared = (s: Session): void => {
    const devices = devicesOf(s);
    if (s.state === 'ACTIVE' && devices.length > 1) shared.set(s.id, devices);
    else shared.delete(s.id);
  };
  /** SessionsPort.version: bumped on every change to byMac. */
  let version = 0;
  const trackDevice = (s: Session, mac: string): void => {
    if (s.state !== 'ACTIVE' || s.startedAt === null) return;
    byMac.set(mac, { id: s.id, mac, metric: s.metric, startedAt: s.startedAt, slot: manager.slotOf?.(s.id) ?? -1 });
    version++;
  };
  const untrack = (s: Session, mac: string): void => {
    if (byMac.get(mac)?.id !== s.id) return;
    byMac.delete(mac);
    version++;
  };
  const track = (s: Session): void => {
    for (const mac of devicesOf(s)) trackDevice(s, mac);
    trackShared(s);
  };
  for (const s of manager.list({ state: 'ACTIVE' })) track(s);
  const offStarted = manager.on('started', track);
  const offEnded = manager.on('ended', (s) => {
    for (const mac of devicesOf(s)) untrack(s, mac);
    shared.delete(s.id);
  });
  const offJoined = manager.on('joined', (s, mac) => {
    trackDevice(s, mac);
    trackShared(s);
  });
  const offLeft = manager.on('left', (s, mac) => {
    untrack(s, mac);
    trackShared(s);
  });
  // A session moved to another MAC (a customer's restore, ubus `move`): its bytes are the new MAC's from now on.
  const offMoved = manager.on('moved', (s, from) => {
    untrack(s, from);
    track(s);
  });
  return {
    active: (mac) => byMac.get(mac),
    activeSessions: () => byMac.values(),
    version: () => version,
    applyUsage: (ids, bytes, count, remainingBytesOut, slots) =>
      manager.applyUsage(ids, bytes, count, remainingBytesOut, undefined, slots),
    // What it billed, told to the manager's followers (its `usage` event).
    reportUsage: (batch) => manager.reportUsage?.(batch),
    remainingBytes: (id) => {
      const left = manager.remaining(id);
      return left === null ? 0 : Number(left);
    },
    sharedDevices: (id) => shared.get(id),
    dispose: () => {
      offStarted();
      offEnded();
      offJoined();
      offLeft();
      offMoved();
    },
  };
}
