/**
 * Which ACTIVE session each counter-table slot's MAC has, and the sessions whose MAC has no slot (the portal never
 * listed it): a tick's per-client work (billing each delta, the gate checks) reads an array by slot instead of one Map
 * lookup per client and per check. At 10,000 clients those lookups, and walking every session to find the few the
 * portal dropped, were most of the tick's main-thread work (docs/performance.md).
 *
 * The index is rebuilt when the sessions port's version changed (a session started, ended, joined, left or moved) or
 * the table gained slots; a port without a version is indexed afresh every tick. Between rebuilds it is exact; while
 * a tick yields to the event loop a session may change, so a reader checks fresh() after each turn and falls back to
 * the port.
 */
import type { MeteredSession, SessionsPort } from './ports.ts';
import { SLICE, TurnBudget } from './timing.ts';

export class SlotSessions {
  private bySlot: Array<MeteredSession | undefined> = [];
  private noSlot: MeteredSession[] = [];
  private builtVersion: number | undefined;
  private builtSlots = -1;
  /** Bumped by every rebuild: readers that derive their own per-slot state from the index redo it when it moves. */
  generation = 0;

  constructor(private readonly sessions: SessionsPort) {}

  /** Whether the index still answers as the port would (false for a port without a version). */
  fresh(): boolean {
    const version = this.sessions.version?.();
    return version !== undefined && version === this.builtVersion;
  }

  /**
   * Brings the index up to date: rebuilt if the port changed; extended if only the table has new slots (`slotMacs`,
   * `slotCount`: each new slot's MAC looked up once, as clients arrive). The generation moves only on a rebuild.
   */
  async refresh(macToSlot: ReadonlyMap<string, number>, slotMacs: readonly string[], slotCount: number): Promise<void> {
    if (this.fresh()) {
      if (slotCount > this.builtSlots) this.extend(macToSlot, slotMacs, slotCount);
      return;
    }
    // The version before the walk: a change during one of its turns leaves the index stale (fresh() false), not wrong.
    this.builtVersion = this.sessions.version?.();
    this.builtSlots = slotCount;
    this.generation++;
    const bySlot = new Array<MeteredSession | undefined>(slotCount);
    const noSlot: MeteredSession[] = [];
    const turn = new TurnBudget();
    let n = 0;
    // No copy of the sessions: a Map iterator survives entries added or deleted between slices.
    for (const session of this.sessions.activeSessions()) {
      if (++n % SLICE === 0) await turn.pause();
      const slot = macToSlot.get(session.mac);
      if (slot === undefined || slot >= slotCount) noSlot.push(session);
      else bySlot[slot] = session;
    }
    this.bySlot = bySlot;
    this.noSlot = noSlot;
  }

  /** Slots the table added since the index was built, the sessions unchanged: only the new slots' MACs looked up. */
  private extend(macToSlot: ReadonlyMap<string, number>, slotMacs: readonly string[], slotCount: number): void {
    let moved = false;
    for (let slot = this.builtSlots; slot < slotCount; slot++) {
      const session = this.sessions.active(slotMacs[slot]!);
      this.bySlot[slot] = session;
      if (session !== undefined) moved = true;
    }
    this.builtSlots = slotCount;
    // A session whose MAC had no slot before has one now.
    if (moved && this.noSlot.length > 0) {
      this.noSlot = this.noSlot.filter((s) => {
        const slot = macToSlot.get(s.mac);
        return slot === undefined || slot >= slotCount;
      });
    }
  }

  /** The ACTIVE session of the slot's MAC as of the last refresh. */
  at(slot: number): MeteredSession | undefined {
    return this.bySlot[slot];
  }

  /** How many slots the index covers. */
  get slots(): number {
    return this.bySlot.length;
  }

  /** The ACTIVE sessions whose MAC had no table slot as of the last refresh. */
  withoutSlot(): readonly MeteredSession[] {
    return this.noSlot;
  }
}
