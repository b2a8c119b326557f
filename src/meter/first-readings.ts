/**
 * The first-reading watch: billing from the first byte after an auth. Both portals start a client's counters at 0
 * when they authenticate it (openNDS iptables_fw_authenticate zeroes them and adds fresh counting rules; nodogsplash
 * counts only through the rules auth adds, on counters client_reset zeroed at deauth or creation), so the first
 * reading that shows a gate sluice opened is entirely usage of this session: it is billed in full, whatever the meter
 * saw (or did not see) before. The gatekeeper says when it auths (authStarting) and how that went (authFinished).
 *
 * So this watch is the one owner of a watched client's readings up to and including that first open one: the tick's
 * ordinary billing skips every reading owns() claims. Besides that first open reading (billed by the tick, or held and
 * billed by finished), it claims the readings that show the gate still closed while the auth is on its way: on the
 * kernel's counters the fresh counters count from before the auth and the roster says closed until the auth's outcome,
 * and the first open reading bills them again in full; on the portal's, a reading after a closed one is otherwise
 * billed as bought. Either would bill a reading twice when the client is listed Preauthenticated.
 */
import { billUsage, OPEN_GATE_CODES, type MeterContext } from './context.ts';
import type { CutPlanner } from './cut-planner.ts';
import type { MeteredSession, UsageReport } from './ports.ts';
import { FLAG_PRESENT, type TableView } from './table.ts';

/** An epoch's first reading of a gate sluice opened, to be billed in full. */
export interface FirstReading {
  session: MeteredSession;
  down: number;
  up: number;
  since: number;
}

interface AuthWatch {
  sessionId: string;
  /**
   * 'expected': the auth is in flight (a reading taken now is held until its outcome is known); 'opened': it worked.
   */
  state: 'expected' | 'opened';
  /** When the auth was started: the epoch's bytes accumulated since then (the first rate estimate). */
  at: number;
  /** The epoch's first reading, taken while the auth's outcome was unknown. */
  held?: { down: number; up: number; at: number };
}

export class FirstReadingWatch {
  /** By MAC (lowercase colon form). */
  private readonly watches = new Map<string, AuthWatch>();
  /**
   * The MACs whose readings in tick `claimedTick` are the watch's (settle). Kept apart from the watches: an auth that
   * finishes while that tick is still billing (between its slices) ends its watch, and its held reading must still not
   * be billed by the tick.
   */
  private claimed = new Set<string>();
  private claimedTick = 0;

  constructor(
    private readonly ctx: MeterContext,
    private readonly planner: CutPlanner,
    /** Whether the kernel quota stops this MAC at its allotment (brake-watch.ts): no reading decides its cut. */
    private readonly braked: (mac: string) => boolean = () => false,
    /** A session's first reading was billed (zero bytes too): the next delta is all its own (purchase-bases.ts). */
    private readonly firstBilled: (mac: string, sessionId: string) => void = () => undefined,
  ) {}

  /** Gates watched: while there are any, a tick settles them. */
  get size(): number {
    return this.watches.size;
  }

  /**
   * Whether a watched gate's first reading is wanted before the poll interval (the next tick then comes within
   * firstReadingMs): a data session that only a reading can cut, whose rate it first tells the cut planner. A time
   * session ends on its clock, and a braked one where the kernel stops it: their first readings bill the same bytes
   * at the ordinary tick (the counters count from the auth), and an early tick for them costs the router a counters
   * dump for nothing.
   */
  wantsEarlyReading(): boolean {
    for (const [mac, watch] of this.watches)
      if (this.ctx.sessions.active(mac)?.id === watch.sessionId && this.wantsEarlyReadingOf(mac)) return true;
    return false;
  }

  /** Whether the live session of `mac`, whose gate just opened, wants its first reading soon (above). */
  wantsEarlyReadingOf(mac: string): boolean {
    return this.ctx.sessions.active(mac)?.metric === 'bytes' && !this.braked(mac);
  }

  /** The gatekeeper is about to `auth` this MAC for this session: its counters will start at 0. */
  starting(mac: string, sessionId: string): void {
    this.watches.set(mac, { sessionId, state: 'expected', at: this.ctx.clock.now() });
  }

  /** An auth of this MAC is in flight (between starting and finished). */
  authing(mac: string): boolean {
    return this.watches.get(mac)?.state === 'expected';
  }

  /**
   * The outcome of that auth. 'opened': bill the held first reading if a tick already took it, else the next one.
   * 'already-open' (the portal had it open before: its counters predate this session) or 'failed': forget the watch;
   * the ordinary purchase baseline applies. Returns whether the gate opened for this session (read it again soon).
   */
  finished(mac: string, sessionId: string, result: 'opened' | 'already-open' | 'failed'): boolean {
    const watch = this.watches.get(mac);
    if (watch === undefined || watch.sessionId !== sessionId) return false;
    if (result !== 'opened') {
      this.watches.delete(mac);
      return false;
    }
    watch.state = 'opened';
    const port = this.ctx.sessions;
    const opened = port.active(mac);
    if (opened !== undefined && opened.id === sessionId && opened.metric === 'bytes') {
      this.planner.watchRemaining(opened, port.remainingBytes(sessionId), 0);
    }
    if (watch.held !== undefined) {
      this.watches.delete(mac);
      const session = port.active(mac);
      if (session !== undefined && session.id === sessionId)
        this.bill([{ session, ...watch.held, since: watch.at }], watch.held.at);
    }
    return true;
  }

  /**
   * This tick's reading of this MAC is the watch's (settle): the epoch's first open reading, which bill() or finished
   * bills, or one with the gate still closed, which that first open reading covers. The tick does not bill it.
   */
  owns(mac: string, tick: number): boolean {
    return tick === this.claimedTick && this.claimed.has(mac);
  }

  /**
   * The watched gates whose first open reading is in this tick: with the auth known to be sluice's, that reading is
   * returned to be billed in full; while the auth is still in flight it is held (finished bills it). A reading with the
   * gate still closed is claimed too (owns), not billed: the counters it shows are in the first open one. So is a
   * later reading of a held epoch whose delta the tick would drop as the session's base (`previousAt`, when the last
   * committed tick was dispatched, is before the purchase): the held reading moves up to it, and the auth's outcome
   * decides for both. Counters that began at this session's own auth hold nothing from before its purchase, but until
   * that outcome nothing says they did. `dispatchAt`: this tick's.
   */
  settle(
    view: TableView,
    macToSlot: ReadonlyMap<string, number>,
    tick: number,
    { dispatchAt, previousAt }: { dispatchAt: number; previousAt: number | undefined },
  ): FirstReading[] {
    const port = this.ctx.sessions;
    const firsts: FirstReading[] = [];
    this.claimed = new Set();
    this.claimedTick = tick;
    for (const [mac, watch] of this.watches) {
      const session = port.active(mac);
      if (session === undefined || session.id !== watch.sessionId) {
        this.watches.delete(mac);
        continue;
      }
      const slot = macToSlot.get(mac);
      if (slot === undefined) continue;
      const flags = view.flags(slot, tick);
      if (flags < 0 || (flags & FLAG_PRESENT) === 0) continue;
      if (!OPEN_GATE_CODES.has(flags >> 1)) {
        this.claimed.add(mac);
        continue;
      }
      if (!view.startsEpoch(slot)) {
        // Open and continuing what an earlier reading saw: that reading (held, or billed) was the epoch's first.
        if (watch.held === undefined) this.watches.delete(mac);
        else if (previousAt === undefined || previousAt < session.startedAt) {
          const [down, up] = view.readingParts(slot);
          watch.held = { down, up, at: dispatchAt };
          this.claimed.add(mac);
        }
        continue;
      }
      const [down, up] = view.readingParts(slot);
      this.claimed.add(mac);
      if (watch.state === 'expected') watch.held = { down, up, at: dispatchAt };
      else firsts.push({ session, down, up, since: watch.at });
    }
    return firsts;
  }

  /** The tick billed these: their watches end. */
  done(firsts: readonly FirstReading[]): void {
    for (const f of firsts) this.watches.delete(f.session.mac);
  }

  /** Bills epochs' first readings in full; returns the earliest predicted crossing among them (ms from now). */
  bill(firsts: readonly FirstReading[], at: number): number {
    const usage: UsageReport[] = [];
    const out = new Float64Array(1);
    let next = Infinity;
    for (const f of firsts) {
      this.firstBilled(f.session.mac, f.session.id);
      const bytes = f.down + f.up;
      if (bytes <= 0) continue;
      const session = f.session;
      if (!billUsage(this.ctx, [session.id], Float64Array.of(bytes), 1, out)) continue;
      const remainingBytes = session.metric === 'bytes' ? out[0]! : Infinity;
      usage.push({
        mac: session.mac,
        sessionId: session.id,
        slot: session.slot ?? -1,
        metric: session.metric,
        deltaBytes: bytes,
        deltaDownloadBytes: f.down,
        deltaUploadBytes: f.up,
        remainingBytes,
        exhausted: session.metric === 'bytes' && remainingBytes <= 0,
      });
      if (session.metric === 'bytes') {
        const rate = at > f.since ? bytes / (at - f.since) : 0;
        next = Math.min(next, this.planner.onFirstReading(session, remainingBytes, rate));
      }
    }
    if (usage.length > 0) this.ctx.onUsage(usage);
    return next;
  }
}
