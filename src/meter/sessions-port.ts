/**
 * SessionsPort over the real SessionManager (src/sessions). Keeps its own MAC → session index from the manager's
 * events, so a tick costs Map lookups rather than copying every session (`list()` copies each one).
 */
import type { Session, SessionBillingPort, SessionEventsView, SessionReadView } from '../sessions/index.ts';
import type { MeteredSession, SessionsPort } from './ports.ts';

export type ManagerForMeter = SessionReadView & SessionEventsView & SessionBillingPort;

export interface ManagedSessionsPort extends SessionsPort {
  /** Stops following the manager's events. */
  dispose(): void;
}

export function sessionManagerPort(manager: ManagerForMeter): ManagedSessionsPort {
  const byMac = new Map<string, MeteredSession>();
  const track = (s: Session): void => {
    if (s.state !== 'ACTIVE' || s.startedAt === null) return;
    byMac.set(s.mac, { id: s.id, mac: s.mac, metric: s.metric, startedAt: s.startedAt, slot: manager.slotOf?.(s.id) ?? -1 });
  };
  for (const s of manager.list({ state: 'ACTIVE' })) track(s);
  const offStarted = manager.on('started', track);
  const offEnded = manager.on('ended', (s) => {
    if (byMac.get(s.mac)?.id === s.id) byMac.delete(s.mac);
  });
  return {
    active: (mac) => byMac.get(mac),
    activeSessions: () => byMac.values(),
    applyUsage: (ids, bytes, count, remainingBytesOut) => manager.applyUsage(ids, bytes, count, remainingBytesOut),
    remainingBytes: (id) => {
      const left = manager.remaining(id);
      return left === null ? 0 : Number(left);
    },
    dispose: () => { offStarted(); offEnded(); },
  };
}
