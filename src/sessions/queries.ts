/**
 * What the session manager answers without changing anything: a session by id or MAC, the lists, what is left, the
 * report figures (copies or numbers, never the manager's own objects), the meter's read paths and the journal's
 * payment references. The manager (manager.ts) is this and the one place sessions change; it extends this class, so
 * a read can never write and a reader of the changes need not read past the reads.
 */
import type { SessionFigures, SessionFilter, SessionNumbers } from './manager-types.ts';
import { normalizeMac, paymentKeys, remaining, remainingNumber, usedAt, viewSession } from './model.ts';
import type { Session } from './model.ts';
import { FiguresWriter, figuresOf, listViews } from './reads.ts';
import { Registry } from './registry.ts';
import { takenBy } from './changes.ts';
import type { Clock } from './time.ts';

export class SessionQueries {
  protected readonly reg = new Registry();
  private readonly figures = new FiguresWriter();

  constructor(protected readonly clock: Clock) {}

  /** `method`'s payments the journal holds, each with when it was applied (a method's ledger is checked against). */
  paymentReferences(method: string): Map<string, number> {
    return this.reg.referencesOf(paymentKeys({ method, reference: '' })[0]!);
  }

  /** The sales book (sales-book.ts): what ubus `sales` sums. */
  get salesBook(): Registry['sales'] {
    return this.reg.sales;
  }

  /** What the charge made under idempotency key `key` took; null: none made, or made before this was recorded. */
  chargeTaken(key: string): bigint | null {
    return takenBy(this.reg.refs, key);
  }

  /** The meter's fast read path: every ACTIVE data session with what it may still use. */
  *activeDataSessions(): Iterable<{ id: string; mac: string; remainingBytes: number }> {
    for (const s of this.reg.live()) {
      if (s.state === 'ACTIVE' && s.metric === 'bytes')
        yield { id: s.id, mac: s.mac, remainingBytes: remainingNumber(s, 0) };
    }
  }

  /** MACs whose gate should be open (every device of ACTIVE sessions of either metric). */
  *activeMacs(): Iterable<string> {
    for (const [mac, s] of this.reg.liveDevices()) if (s.state === 'ACTIVE') yield mac;
  }

  get(id: string): Session | null {
    const s = this.reg.sessions.get(id);
    return s ? viewSession(s, this.clock.now()) : null;
  }

  /** The MAC's live session, or else its most recent ended one still retained. Throws ERR_INVALID_MAC on a bad MAC. */
  byMac(mac: string): Session | null {
    const s = this.reg.latestFor(normalizeMac(mac));
    return s ? viewSession(s, this.clock.now()) : null;
  }

  /**
   * Copies of the sessions `filter` matches, live and retained ended ones, oldest first. Throws ERR_INVALID_MAC on a
   * bad MAC.
   */
  list(filter: SessionFilter = {}): Session[] {
    const mac = filter.mac === undefined ? undefined : normalizeMac(filter.mac);
    return listViews(this.reg.sessions.values(), filter, mac, this.clock.now());
  }

  remaining(id: string): bigint | null {
    const s = this.reg.sessions.get(id);
    return s ? remaining(s, this.clock.now()) : null;
  }

  /** Used and remaining of one session without copying it (the per-tick usage event reads every billed session). */
  usageOf(id: string, now = this.clock.now()): { used: number; remaining: bigint } | null {
    const s = this.reg.sessions.get(id);
    return s ? { used: usedAt(s, now), remaining: remaining(s, now) } : null;
  }

  /** A session's report figures without copying it (upstream usage reports read every billed session per tick). */
  figuresOf(id: string, now = this.clock.now()): SessionFigures | null {
    const s = this.reg.sessions.get(id);
    return s ? figuresOf(s, now) : null;
  }

  /**
   * A live session's slot (-1 once ended or unknown): the meter carries it in its usage batch, so figuresInto finds
   * the session by index (docs/performance.md).
   */
  slotOf(id: string): number {
    return this.reg.slotOf(id);
  }

  /**
   * figuresOf as numbers, written into `out`: no object and no bigint arithmetic per call, for the per-tick usage
   * report (10k billed sessions a tick). `slot` (the usage batch's, or -1) saves the id lookup while it still holds
   * this session. False if the session is unknown.
   */
  figuresInto(id: string, now: number, out: SessionNumbers, slot = -1): boolean {
    const s = this.reg.atSlot(slot, id);
    if (s === undefined) return false;
    this.figures.write(s, now, out, slot);
    return true;
  }
}
