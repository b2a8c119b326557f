/**
 * The manager's indexes over its sessions: by id, live session per MAC, live sessions per user, most recent ended
 * session per MAC (for `session {mac}` after an end), and the applied payment keys. No policy here, only bookkeeping
 * that must stay consistent whenever a session object is installed, replaced or removed.
 */
import { tryNormalizeMac } from '../mac.ts';
import { devicesOf, isLive } from './model.ts';
import type { Session } from './model.ts';
import { SalesBook } from './sales-book.ts';
import { expiredByRetention, type RetentionPolicy } from './store.ts';

const NORMAL_MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export class Registry {
  readonly sessions = new Map<string, Session>();
  readonly refs = new Map<string, number>();
  /** Every payment sold within the sales window (sales-book.ts); the store's, once recovered. */
  sales = new SalesBook(Date.now());
  private readonly liveByMac = new Map<string, string>();
  private readonly liveByUser = new Map<string, Set<string>>();
  private readonly lastEndedByMac = new Map<string, string>();
  private readonly endedIds = new Set<string>();
  /**
   * Live sessions by slot: a small integer a live session keeps from install to end (a PENDING → ACTIVE replace keeps
   * it), reused after. The meter's usage batch carries it, so the per-tick reports read a session by array index
   * instead of a Map lookup; readers check the id, since a slot freed this tick may already hold a new session.
   */
  readonly bySlot: Array<Session | undefined> = [];
  private readonly slots = new Map<string, number>();
  private readonly freeSlots: number[] = [];

  /** Drops the ended sessions, payment keys and sales the retention no longer keeps. */
  prune(now: number, retention: RetentionPolicy): void {
    const { sessionIds, refKeys } = expiredByRetention(this.ended(), this.refs, now, retention);
    for (const id of sessionIds) {
      const s = this.sessions.get(id);
      if (s) this.remove(s);
    }
    for (const key of refKeys) this.refs.delete(key);
    this.sales.prune(now);
  }

  /** The applied payment keys under `prefix` (a method's), without it, each with when it was applied. */
  referencesOf(prefix: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, at] of this.refs) if (key.startsWith(prefix)) out.set(key.slice(prefix.length), at);
    return out;
  }

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
    for (const mac of devicesOf(session))
      if (this.lastEndedByMac.get(mac) === session.id) this.lastEndedByMac.delete(mac);
  }

  /** A device joined a live session: its MAC finds the session from now on. */
  addDevice(session: Session, mac: string): void {
    this.liveByMac.set(mac, session.id);
  }

  /** A joined device removed from a live session. */
  removeDevice(session: Session, mac: string): void {
    if (this.liveByMac.get(mac) === session.id && mac !== session.mac) this.liveByMac.delete(mac);
  }

  /** The slot of a live session, -1 for an ended or unknown one. */
  slotOf(id: string): number {
    return this.slots.get(id) ?? -1;
  }

  /** The session in `slot` if it is still `id`'s (-1, or a slot freed or reused since: undefined). */
  heldAt(slot: number, id: string): Session | undefined {
    const s = slot >= 0 ? this.bySlot[slot] : undefined;
    return s !== undefined && s.id === id ? s : undefined;
  }

  /** The session in `slot` if it is still `id`'s, else `id`'s by lookup (ended since, or no slot given). */
  atSlot(slot: number, id: string): Session | undefined {
    return this.heldAt(slot, id) ?? this.sessions.get(id);
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

  /** Each live session once (a multi-device session is listed under each of its MACs: yielded for its buyer's). */
  *live(): Iterable<Session> {
    for (const [mac, id] of this.liveByMac) {
      const s = this.sessions.get(id);
      if (s && s.mac === mac) yield s;
    }
  }

  /** Every MAC a live session pays for, with its session. */
  *liveDevices(): Iterable<[string, Session]> {
    for (const [mac, id] of this.liveByMac) {
      const s = this.sessions.get(id);
      if (s) yield [mac, s];
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
    return this.slots.size;
  }

  endedCount(): number {
    return this.endedIds.size;
  }

  private index(s: Session): void {
    if (isLive(s)) {
      let slot = this.slots.get(s.id);
      if (slot === undefined) {
        slot = this.freeSlots.pop() ?? this.bySlot.length;
        this.slots.set(s.id, slot);
      }
      this.bySlot[slot] = s;
      for (const mac of devicesOf(s)) this.liveByMac.set(mac, s.id);
      if (s.user !== null) {
        let set = this.liveByUser.get(s.user);
        if (!set) this.liveByUser.set(s.user, (set = new Set()));
        set.add(s.id);
      }
      return;
    }
    this.endedIds.add(s.id);
    for (const mac of devicesOf(s)) {
      const lastId = this.lastEndedByMac.get(mac);
      const last = lastId === undefined ? undefined : this.sessions.get(lastId);
      if (!last || (last.endedAt ?? 0) <= (s.endedAt ?? 0)) this.lastEndedByMac.set(mac, s.id);
    }
  }

  private unindex(s: Session): void {
    if (isLive(s)) {
      const slot = this.slots.get(s.id);
      if (slot !== undefined) {
        // Freed here; a replace with the next live state of the same session takes it back at once (index()).
        this.slots.delete(s.id);
        this.bySlot[slot] = undefined;
        this.freeSlots.push(slot);
      }
      for (const mac of devicesOf(s)) if (this.liveByMac.get(mac) === s.id) this.liveByMac.delete(mac);
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
