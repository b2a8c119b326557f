/**
 * A session's new rates (a CoA or a ubus `change`, on flash already) set on each of its devices whose gate passes:
 * one change of a session after another, each after any opening in flight (an auth sets the rates it was started
 * with, so the new ones go on after it). A pending or held gate gets them at its auth.
 */
import { toSluiceError } from '../errors.ts';
import { devicesOf, isLive, type Session } from '../sessions/index.ts';
import type { GatekeeperOptions } from './options.ts';

export interface RateFollowerPorts extends Pick<GatekeeperOptions, 'sessions' | 'shaper' | 'valve' | 'log'> {
  /** The opening in flight for a MAC, if any. */
  openingOf(mac: string): Promise<unknown> | undefined;
  /** Whether the MAC's gate is open and not held. */
  passes(mac: string): boolean;
}

export class RateFollower {
  private readonly changes = new Map<string, Promise<void>>();

  constructor(private readonly p: RateFollowerPorts) {}

  /** A session's rates changed: set after the session's earlier change. */
  changed(s: Session): void {
    const previous = this.changes.get(s.id) ?? Promise.resolve();
    const run = previous
      .then(() => this.apply(s))
      .catch((err: unknown) => {
        this.p.log.warn('new rates not set', { session: s.id, reason: toSluiceError(err).message });
      });
    this.changes.set(s.id, run);
    void run.finally(() => {
      if (this.changes.get(s.id) === run) this.changes.delete(s.id);
    });
  }

  /** The kernel's side of the session's last rate change: done (or nothing to do) when this resolves. */
  applied(sessionId: string): Promise<void> {
    return this.changes.get(sessionId) ?? Promise.resolve();
  }

  private async apply(s: Session): Promise<void> {
    const { shaper, sessions, valve, log } = this.p;
    if (!shaper || !s.rates) return;
    for (const mac of devicesOf(s)) {
      await this.p.openingOf(mac);
      const current = sessions.byMac(mac);
      if (current === null || current.id !== s.id || !isLive(current) || !this.p.passes(mac)) continue;
      const ip = valve.lastIp?.(mac) ?? (mac === current.mac ? current.ip : null);
      if (ip === null) {
        log.warn("new rates not set: the client's address is unknown; they apply at its next auth", {
          mac,
          session: s.id,
        });
        continue;
      }
      const rates = current.rates ?? s.rates;
      await shaper.set({ mac, ip, downBps: rates.downBps, upBps: rates.upBps });
      log.info('rates set', { mac, session: s.id, down: rates.downBps, up: rates.upBps });
    }
  }
}
