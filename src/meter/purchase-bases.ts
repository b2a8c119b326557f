/**
 * The purchase baseline across ticks that did not commit (docs/metering.md, "Baseline").
 *
 * A delta the tick loop bills covers everything since the last committed reading: a tick that failed leaves its
 * readings as the next one's base with what it billed carried on top (epochs.ts), so after failed ticks the delta
 * spans them all. When that committed reading predates a purchase, the delta may hold bytes used before it and is
 * dropped as the session's base. Dropped whole, it would also drop every byte that passed between the first reading
 * taken after the purchase (by a tick that failed) and the tick that committed: the unbilled window would widen with
 * every failed tick. So after a failed tick, for each client it read whose session was bought after the last committed
 * reading and before that tick was dispatched, this keeps what that tick carried (everything from the committed
 * reading to its own): the committed tick's delta less that carry is what passed after the first reading taken after
 * the purchase, billed as it would have been had that tick committed.
 */
import type { TableView } from './table.ts';

export interface PurchaseBase {
  /** The session whose purchase the reading came after. */
  sessionId: string;
  /** What the first failed tick after the purchase carried for the client, both ways (bytes). */
  down: number;
  up: number;
}

export class PurchaseBases {
  #bases = new Map<string, PurchaseBase>();

  /**
   * After tick `tick`, dispatched at `dispatchAt`, failed: the clients it read (present, their readings in the table's
   * pending halves) whose session started after `lastCommitAt` and by `dispatchAt`, the first time for each.
   */
  noteFailedTick(
    view: TableView,
    tick: number,
    dispatchAt: number,
    lastCommitAt: number | undefined,
    macOf: (slot: number) => string,
    active: (mac: string) => { id: string; startedAt: number } | undefined,
  ): void {
    const count = view.slotCount;
    for (let slot = 0; slot < count; slot++) {
      const carried = view.pendingCarry(slot, tick);
      if (carried === undefined) continue;
      const mac = macOf(slot);
      if (this.#bases.has(mac)) continue;
      const session = active(mac);
      if (session === undefined || session.startedAt > dispatchAt) continue;
      if (lastCommitAt !== undefined && lastCommitAt >= session.startedAt) continue;
      this.#bases.set(mac, { sessionId: session.id, down: carried[0], up: carried[1] });
    }
  }

  /**
   * The first-reading watch billed the first reading of this session's counters (they began at its auth, after its
   * purchase): nothing in the next delta predates the purchase, whenever the tick that took that reading was
   * dispatched. A tick dispatched just before a purchase whose gate opened before the tick read the counters (an
   * opening while the sale is written) would otherwise have its next delta dropped as the session's base.
   */
  noteFirstReading(mac: string, sessionId: string): void {
    this.#bases.set(mac, { sessionId, down: 0, up: 0 });
  }

  /** The bases noted since the last committed tick, handed to that tick's billing and forgotten here. */
  take(): ReadonlyMap<string, PurchaseBase> {
    const bases = this.#bases;
    if (bases.size > 0) this.#bases = new Map();
    return bases;
  }
}
