/**
 * The gate facts a tick reports (it never opens or closes a gate itself): paying clients the portal dropped (absent:
 * gone; back unauthenticated: reopen) and clients with an open gate and no ACTIVE session (openUnpaid, for the
 * gatekeeper's enforce).
 */
import { STATE_CODES } from '../portal/index.ts';
import type { Clock } from '../time.ts';
import type { SessionsPort } from './ports.ts';
import { FLAG_PRESENT, type TableView } from './table.ts';
import { SLICE, TurnBudget } from './timing.ts';

export interface GateCheckOptions {
  /** A paying client seen unauthenticated is reported for re-opening at most this often (ms). */
  reopenBackoffMs: number;
  /** Sessions younger than this are not judged gone/closed (ms). */
  graceMs: number;
  /** A live session whose gate must stay closed for now (MeterOptions.gateHeld): reported with the open unpaid. */
  gateHeld?: ((mac: string) => boolean) | undefined;
}

export class GateChecks {
  /** Absent paying clients: since when (clock ms), in the current absence. */
  private readonly goneAt = new Map<string, number>();
  private readonly reopenedAt = new Map<string, number>();

  constructor(
    private readonly sessions: SessionsPort,
    private readonly clock: Clock,
    private readonly options: GateCheckOptions,
  ) {}

  /** When a paying client was first seen absent from the portal in the current absence, if it is absent. */
  goneSince(mac: string): number | undefined {
    return this.goneAt.get(mac);
  }

  /** Paying clients (data and time) whose gate the portal dropped: absent (gone) or back unauthenticated (reopen). */
  async paying(view: TableView, macToSlot: ReadonlyMap<string, number>, tick: number, dispatchAt: number): Promise<{ reopen: string[]; gone: string[] }> {
    const reopen: string[] = [];
    const gone: string[] = [];
    const now = this.clock.now();
    const newest = dispatchAt - this.options.graceMs;
    let n = 0;
    const turn = new TurnBudget();
    // No copy of the sessions: a Map iterator survives entries added or deleted between slices.
    for (const session of this.sessions.activeSessions()) {
      if (++n % SLICE === 0) await turn.pause();
      if (session.startedAt > newest) continue;
      const mac = session.mac;
      const slot = macToSlot.get(mac);
      const flags = slot === undefined ? -1 : view.flags(slot, tick);
      if (flags < 0 || (flags & FLAG_PRESENT) === 0) {
        if (!this.goneAt.has(mac)) this.goneAt.set(mac, now);
        gone.push(mac);
        continue;
      }
      if (this.goneAt.size > 0) this.goneAt.delete(mac);
      if (flags >> 1 === STATE_CODES.Preauthenticated) {
        const last = this.reopenedAt.get(mac);
        if (last === undefined || now - last >= this.options.reopenBackoffMs) {
          this.reopenedAt.set(mac, now);
          reopen.push(mac);
        }
      } else if (this.reopenedAt.size > 0) {
        this.reopenedAt.delete(mac);
      }
    }
    // Forget clients that stopped paying (reopenedAt holds a few entries at a time; goneAt all absent paying clients).
    for (const mac of this.goneAt.keys()) {
      if (++n % SLICE === 0) await turn.pause();
      if (this.sessions.active(mac) === undefined) this.goneAt.delete(mac);
    }
    for (const mac of this.reopenedAt.keys()) if (this.sessions.active(mac) === undefined) this.reopenedAt.delete(mac);
    return { reopen, gone };
  }

  /** Clients present with an open gate (not Trusted: the portal admin's own list) and no ACTIVE session. */
  async openUnpaid(view: TableView, slotMacs: readonly string[], tick: number): Promise<string[]> {
    const out: string[] = [];
    const count = view.slotCount;
    const turn = new TurnBudget();
    for (let slot = 0; slot < count; slot++) {
      if ((slot & (SLICE - 1)) === SLICE - 1) await turn.pause();
      const flags = view.flags(slot, tick);
      if (flags < 0 || (flags & FLAG_PRESENT) === 0) continue;
      const state = flags >> 1;
      if (state !== STATE_CODES.Authenticated && state !== STATE_CODES.AuthBlocked) continue;
      const mac = slotMacs[slot]!;
      if (this.sessions.active(mac) === undefined || this.options.gateHeld?.(mac) === true) out.push(mac);
    }
    return out;
  }
}
