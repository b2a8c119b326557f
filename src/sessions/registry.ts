/**
 * The manager's indexes over its sessions: by id, live session per MAC, live sessions per user, most recent ended
 * session per MAC (for `session {mac}` after an end), and the applied payment keys. No policy here, only bookkeeping
 * that must stay consistent whenever a session object is installed, replaced or removed.
 */
import { tryNormalizeMac } from '../mac.ts';
import { isLive } from './model.ts';
import type { Session } from './model.ts';

const NORMAL_MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export class Registry {
  readonly sessions = new Map<string, Session>();
  readonly refs = new Map<string, number>();
  private readonly liveByMac = new Map<string, string>();
  private readonly liveByUser = new Map<string, Set<string>>();
  private readonly lastEndedByMac = new Map<string, string>();
  private readonly endedIds = new Set<string>();

  install(session: Session): void {
    this.sessions.set(session.id, session);
    this.index(session);
  }

  /** Swaps in a new object for the same id (a state transition). */
  replace(session: Session): void {
    const previous = this.sessions.get(session.id);
    if (previous) this.unindex(previous);
    this.install(session);
  }

  remove(session: Session): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    this.unindex(session);
    if (this.lastEndedByMac.get(session.mac) === session.id) this.lastEndedByMac.delete(session.mac);
  }

  freshId(generate: () => string): string {
    for (;;) {
      const id = generate();
      if (!this.sessions.has(id)) return id;
    }
  }

  /** The live (PENDING or ACTIVE) session of a MAC; accepts any MAC spelling, a bad one finds nothing. */
  liveFor(mac: string): Session | undefined {
    let id = this.liveByMac.get(mac);
    if (id === undefined && !NORMAL_MAC.test(mac)) {
      const normal = tryNormalizeMac(mac);
      if (normal !== null) id = this.liveByMac.get(normal);
    }
    return id === undefined ? undefined : this.sessions.get(id);
  }

  latestFor(mac: string): Session | undefined {
    const id = this.liveByMac.get(mac) ?? this.lastEndedByMac.get(mac);
    return id === undefined ? undefined : this.sessions.get(id);
  }

  *live(): Iterable<Session> {
    for (const id of this.liveByMac.values()) {
      const s = this.sessions.get(id);
      if (s) yield s;
    }
  }

  *liveOfUser(user: string): Iterable<Session> {
    for (const id of this.liveByUser.get(user) ?? []) {
      const s = this.sessions.get(id);
      if (s) yield s;
    }
  }

  *ended(): Iterable<Session> {
    for (const id of this.endedIds) {
      const s = this.sessions.get(id);
      if (s) yield s;
    }
  }

  liveCount(): number {
    return this.liveByMac.size;
  }

  endedCount(): number {
    return this.endedIds.size;
  }

  private index(s: Session): void {
    if (isLive(s)) {
      this.liveByMac.set(s.mac, s.id);
      if (s.user !== null) {
        let set = this.liveByUser.get(s.user);
        if (!set) this.liveByUser.set(s.user, (set = new Set()));
        set.add(s.id);
      }
      return;
    }
    this.endedIds.add(s.id);
    const lastId = this.lastEndedByMac.get(s.mac);
    const last = lastId === undefined ? undefined : this.sessions.get(lastId);
    if (!last || (last.endedAt ?? 0) <= (s.endedAt ?? 0)) this.lastEndedByMac.set(s.mac, s.id);
  }

  private unindex(s: Session): void {
    if (isLive(s)) {
      if (this.liveByMac.get(s.mac) === s.id) this.liveByMac.delete(s.mac);
      const set = s.user === null ? undefined : this.liveByUser.get(s.user);
      if (set) {
        set.delete(s.id);
        if (set.size === 0) this.liveByUser.delete(s.user!);
      }
      return;
    }
    this.endedIds.delete(s.id);
  }
}
