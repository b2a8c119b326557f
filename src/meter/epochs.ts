/**
 * Per-MAC counter-epoch accounting over the shared table (runs in the usage worker; pure: no I/O).
 *
 * Portal counters are per authentication: they start at 0 on every auth, and openNDS drops a deauthed client from
 * the list altogether. So usage is the sum over epochs of what each epoch counted, and a new epoch starts when
 *   - a reading is lower than the last committed one (either direction),
 *   - the token changed (re-auth),
 *   - a client that was known, vanished and came back.
 * A new epoch's counter started at 0 after our last observation, so everything it shows is new usage (counting it from
 * 0 is what "never forgiven" means; the old epoch's bytes after our last reading are unknowable and so not billed).
 * A MAC this meter has never seen present gets its first reading as the base and no delta: those bytes may already be
 * on someone's books (a sluice restart), and bytes before a purchase are never billed.
 */
import {
  type CounterTable,
  FLAG_KNOWN,
  FLAG_PRESENT,
  FLOAT_STRIDE,
  F_C_DOWN,
  F_C_UP,
  F_P_BILLED_DOWN,
  F_P_BILLED_UP,
  F_P_DOWN,
  F_P_UP,
  growTable,
  HEADER_INTS,
  H_COMMITTED_TICK,
  H_SLOT_COUNT,
  INT_STRIDE,
  I_C_FLAGS,
  I_C_TICK,
  I_C_TOKEN,
  I_MAC_HI,
  I_MAC_LO,
  I_P_FLAGS,
  I_P_TICK,
  I_P_TOKEN,
  promoteSlot,
  tableCapacity,
  tableId,
} from './table.ts';
import { PendingLog } from './pending-log.ts';

export interface TickDeltas {
  /**
   * Clients that used bytes this tick as triples [slot, downloadBytes, uploadBytes], on a SharedArrayBuffer so that
   * handing it to the main thread copies nothing. The accountant's own buffer, written again by its next finish():
   * a tick's deltas are read before the next tick runs (ticks never overlap: meter/tick-loop.ts).
   */
  deltas: Float64Array;
  /** Number of triples. */
  count: number;
  /** Clients in the snapshot. */
  clients: number;
  newEpochs: number;
  arrivals: number;
  departures: number;
}

/**
 * A same-token reading below half the base is a real reset (the portal's counting rules were re-created under the same
 * client, e.g. a firewall restart): a new epoch counted from 0. Anything above that is a glitch (see observe()).
 */
function isReset(reading: number, base: number): boolean {
  return reading < base / 2;
}

export class EpochAccountant {
  private table: CounterTable | undefined;
  private attachedId = 0;
  private ints: Int32Array<ArrayBufferLike> = new Int32Array(0);
  private floats: Float64Array<ArrayBufferLike> = new Float64Array(0);
  /**
   * MAC → slot: open addressing over (macHi, macLo) in a typed array (slot + 1, 0 = empty), a cache of what the table
   * holds, rebuilt whenever this thread sees a new table. No Map: a 48-bit key would be a boxed double per lookup.
   */
  private buckets = new Int32Array(2048);
  private mask = 2047;
  private indexedCount = 0;
  private tick = 0;
  private committed = 0;
  private clients = 0;
  private newEpochs = 0;
  private arrivals = 0;
  private grown = false;
  private deltaSlots = new Uint32Array(256);
  private deltaDown = new Float64Array(256);
  private deltaUp = new Float64Array(256);
  private deltaCount = 0;
  /**
   * What finish() hands back, kept from tick to tick and grown when a tick has more deltas. A new SharedArrayBuffer a
   * tick was allocated in the glibc arena of the thread that ran the tick, high in it late in a busy hour: a buffer
   * that thread had made, still alive after it ended, held the arena's free memory resident (docs/performance.md,
   * "The leak check").
   */
  private deltaOut: Float64Array | undefined;
  /** Worker-local marks of the clients seen in the current pass (a tick re-run by the fallback is a new pass). */
  private seen = new Int32Array(1024);
  private pass = 0;
  /** This tick's tokens are the kernel's counter epochs (kernel-tick.ts): see continueEpochsAcrossAbsence. */
  private kernelEpochs = false;
  /** What the current pass overwrote, and the table the tick began on (the one the main thread keeps if it fails). */
  private readonly overwritten = new PendingLog();
  /** Whether this tick's pass may be given up (beginTick): only then is what it overwrites kept. */
  private undoable = true;
  private tickTable: CounterTable | undefined;
  /** The tick's first table while it has grown (see mirror): its arrays and capacity. */
  private startInts: Int32Array<ArrayBufferLike> | undefined;
  private startFloats: Float64Array<ArrayBufferLike> | undefined;
  private startSlots = 0;

  /** Points the accountant at the main thread's current table (the same one, or a new generation, or a fresh one). */
  attach(table: CounterTable): void {
    // The object this thread attached (a tick run on the main thread) is that generation: its id is read only from an
    // object new here, as a worker's task brings each time.
    const id = this.table === table ? this.attachedId : tableId(table);
    if (this.table !== undefined && this.attachedId === id) {
      this.indexNewSlots();
      return;
    }
    this.attachedId = id;
    this.table = table;
    this.ints = new Int32Array(table.ints);
    this.floats = new Float64Array(table.floats);
    this.buckets = new Int32Array(2048);
    this.mask = 2047;
    this.indexedCount = 0;
    this.grown = false;
    this.indexNewSlots();
  }

  /** The table this tick ended up writing to: a new generation when it had to grow (the main thread adopts it). */
  get currentTable(): CounterTable | undefined {
    return this.table;
  }
  get tableGrew(): boolean {
    return this.grown;
  }

  /**
   * `undoable`: the pass may be given up part-way (a portal listing: a scan that stops, a reply that fails after its
   * first clients), so what it overwrites is kept for resetTick. The kernel's tick accounts a dump already read whole,
   * in one go, and keeps nothing.
   */
  beginTick(tick: number, undoable = true): void {
    this.tick = tick;
    this.undoable = undoable;
    this.kernelEpochs = false;
    this.committed = Atomics.load(this.ints, H_COMMITTED_TICK);
    this.grown = false;
    this.tickTable = this.table;
    this.startInts = undefined;
    this.startFloats = undefined;
    this.startSlots = 0;
    this.overwritten.clear();
    this.resetTick();
  }

  /**
   * Forget this tick's partial results (the caller re-runs it with the JSON.parse fallback, or gives it up): the
   * pending readings it wrote are put back (pending-log.ts); only slots it added stay, holding nothing.
   */
  resetTick(): void {
    if (this.table !== undefined) {
      this.overwritten.restore(this.ints, this.floats, Number.MAX_SAFE_INTEGER);
      const start = this.tickTable;
      if (this.grown && start !== undefined && start !== this.table)
        this.overwritten.restore(new Int32Array(start.ints), new Float64Array(start.floats), tableCapacity(start));
    }
    this.overwritten.clear();
    this.pass++;
    this.clients = 0;
    this.newEpochs = 0;
    this.arrivals = 0;
    this.deltaCount = 0;
  }

  /**
   * One client of the snapshot, counters already in bytes. Returns false for a MAC seen twice in one snapshot (the
   * caller treats the snapshot as suspicious).
   */
  /**
   * For this tick, the tokens are the kernel's counter epochs (meter/kernel-tick.ts), not a portal's: the same token
   * is the same counters, which went on counting while the portal did not list their client (its restart, a moment
   * out of its list). A client back with the same epoch and counters at or above the base continues that epoch (what
   * passed meanwhile billed once), where a portal's client that came back is a new epoch counted from 0 (its counters
   * were zeroed by its new auth, and the old epoch's would be billed twice).
   */
  continueEpochsAcrossAbsence(): void {
    this.kernelEpochs = true;
  }

  observe(macHi: number, macLo: number, token: number, state: number, down: number, up: number): boolean {
    let slot = this.find(macHi, macLo | 0);
    const pFlags = FLAG_PRESENT | ((state & 7) << 1);
    this.clients++;
    if (slot < 0) {
      slot = this.allocate(macHi, macLo);
      this.markSeen(slot);
      if (this.undoable) this.overwritten.record(slot, this.ints, this.floats);
      this.writePending(slot, pFlags, token, down, up, 0, 0);
      this.arrivals++;
      return true;
    }
    const ib = HEADER_INTS + slot * INT_STRIDE;
    if (this.seen[slot] === this.pass) return false;
    this.markSeen(slot);
    if (this.undoable) this.overwritten.record(slot, this.ints, this.floats);
    this.promote(slot);
    const cFlags = this.ints[ib + I_C_FLAGS]!;
    const stale = this.stale(ib);
    if (!this.sightedBefore(ib, stale)) {
      // Never seen present, by a committed tick or one that did not commit: a first sighting. Base only.
      this.writePending(slot, pFlags, token, down, up, 0, 0);
      this.arrivals++;
      return true;
    }
    // What this reading is measured from: the committed one, or an uncommitted tick's (true, never billed) with what
    // that tick billed carried on top (the uncommitted reading may be of an epoch the committed half never saw).
    const fb = slot * FLOAT_STRIDE;
    const refFlags = this.ints[ib + (stale ? I_P_FLAGS : I_C_FLAGS)]!;
    const refToken = this.ints[ib + (stale ? I_P_TOKEN : I_C_TOKEN)]!;
    const baseDown = this.floats[fb + (stale ? F_P_DOWN : F_C_DOWN)]!;
    const baseUp = this.floats[fb + (stale ? F_P_UP : F_C_UP)]!;
    const carryDown = stale ? this.floats[fb + F_P_BILLED_DOWN]! : 0;
    const carryUp = stale ? this.floats[fb + F_P_BILLED_UP]! : 0;
    const refPresent = (refFlags & FLAG_PRESENT) !== 0;
    if (
      refPresent &&
      token === refToken &&
      (down < baseDown || up < baseUp) &&
      !isReset(down, baseDown) &&
      !isReset(up, baseUp)
    ) {
      // Same token, a little lower: a glitch of the portal's counting, not a new epoch (neither portal keeps a token
      // across a re-auth). Only what is proven is billed: the base stays at the highest reading (a high-water mark)
      // and nothing is billed until the counter passes it again.
      const highDown = Math.max(down, baseDown);
      const highUp = Math.max(up, baseUp);
      const billedDown = carryDown + highDown - baseDown;
      const billedUp = carryUp + highUp - baseUp;
      this.writePending(slot, pFlags | FLAG_KNOWN, token, highDown, highUp, billedDown, billedUp);
      if (billedDown > 0 || billedUp > 0) this.pushDelta(slot, billedDown, billedUp);
      return true;
    }
    const back = !refPresent && !(this.kernelEpochs && token !== 0 && token === refToken);
    let usedDown: number;
    let usedUp: number;
    if (back || token !== refToken || down < baseDown || up < baseUp) {
      usedDown = carryDown + down;
      usedUp = carryUp + up;
      this.newEpochs++;
      if ((cFlags & FLAG_PRESENT) === 0) this.arrivals++;
    } else {
      usedDown = carryDown + down - baseDown;
      usedUp = carryUp + up - baseUp;
    }
    this.writePending(slot, pFlags | FLAG_KNOWN, token, down, up, usedDown, usedUp);
    if (usedDown > 0 || usedUp > 0) this.pushDelta(slot, usedDown, usedUp);
    return true;
  }

  /** Marks every slot missing from the snapshot as absent and hands back this tick's deltas. */
  finish(): TickDeltas {
    this.overwritten.clear();
    const count = this.indexedCount;
    let departures = 0;
    for (let slot = 0; slot < count; slot++) {
      const ib = HEADER_INTS + slot * INT_STRIDE;
      if (this.seen[slot] === this.pass) continue;
      this.promote(slot);
      const cFlags = this.ints[ib + I_C_FLAGS]!;
      if (cFlags & FLAG_PRESENT) departures++;
      const stale = this.stale(ib);
      const known = this.sightedBefore(ib, stale);
      const fb = slot * FLOAT_STRIDE;
      if (stale) {
        // An uncommitted tick's reading is the last one of this client: it stays the base, and what that tick billed
        // is billed now.
        const billedDown = this.floats[fb + F_P_BILLED_DOWN]!;
        const billedUp = this.floats[fb + F_P_BILLED_UP]!;
        if (billedDown > 0 || billedUp > 0) this.pushDelta(slot, billedDown, billedUp);
        this.ints[ib + I_P_FLAGS] = known ? FLAG_KNOWN : 0;
        this.ints[ib + I_P_TICK] = this.tick;
        this.mirror(slot);
        continue;
      }
      this.floats[fb + F_P_DOWN] = this.floats[fb + F_C_DOWN]!;
      this.floats[fb + F_P_UP] = this.floats[fb + F_C_UP]!;
      this.floats[fb + F_P_BILLED_DOWN] = 0;
      this.floats[fb + F_P_BILLED_UP] = 0;
      this.ints[ib + I_P_TOKEN] = this.ints[ib + I_C_TOKEN]!;
      this.ints[ib + I_P_FLAGS] = known ? FLAG_KNOWN : 0;
      this.ints[ib + I_P_TICK] = this.tick;
      this.mirror(slot);
    }
    const n = this.deltaCount;
    let out = this.deltaOut;
    if (out === undefined || out.length < n * 3) {
      out = new Float64Array(new SharedArrayBuffer(Math.max(n * 3, 2 * (out?.length ?? 0), 3 * 256) * 8));
      this.deltaOut = out;
    }
    const deltas = out.subarray(0, n * 3);
    for (let k = 0; k < n; k++) {
      deltas[k * 3] = this.deltaSlots[k]!;
      deltas[k * 3 + 1] = this.deltaDown[k]!;
      deltas[k * 3 + 2] = this.deltaUp[k]!;
    }
    return {
      deltas,
      count: n,
      clients: this.clients,
      newEpochs: this.newEpochs,
      arrivals: this.arrivals,
      departures,
    };
  }

  private markSeen(slot: number): void {
    if (slot >= this.seen.length) {
      const next = new Int32Array(Math.max(slot + 1, this.seen.length * 2));
      next.set(this.seen);
      this.seen = next;
    }
    this.seen[slot] = this.pass;
  }

  private indexNewSlots(): void {
    const count = Atomics.load(this.ints, H_SLOT_COUNT);
    for (let slot = this.indexedCount; slot < count; slot++) this.insert(slot);
    this.indexedCount = count;
  }

  private static hash(hi: number, lo: number): number {
    return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) ^ (lo >>> 15);
  }

  /** The slot holding this MAC, or -1. */
  private find(hi: number, lo: number): number {
    const mask = this.mask;
    const buckets = this.buckets;
    const ints = this.ints;
    for (let b = EpochAccountant.hash(hi, lo) & mask; ; b = (b + 1) & mask) {
      const entry = buckets[b]!;
      if (entry === 0) return -1;
      const ib = HEADER_INTS + (entry - 1) * INT_STRIDE;
      if (ints[ib + I_MAC_LO] === lo && ints[ib + I_MAC_HI] === hi) return entry - 1;
    }
  }

  private insert(slot: number): void {
    if ((slot + 1) * 2 > this.mask) {
      // Keep the load under one half: rebuild at twice the size.
      const size = (this.mask + 1) * 2;
      this.buckets = new Int32Array(size);
      this.mask = size - 1;
      for (let s = 0; s < slot; s++) this.place(s);
    }
    this.place(slot);
  }

  private place(slot: number): void {
    const ib = HEADER_INTS + slot * INT_STRIDE;
    const mask = this.mask;
    let b = EpochAccountant.hash(this.ints[ib + I_MAC_HI]!, this.ints[ib + I_MAC_LO]!) & mask;
    while (this.buckets[b] !== 0) b = (b + 1) & mask;
    this.buckets[b] = slot + 1;
  }

  /**
   * Whether the pending half holds the reading of an earlier tick that never committed (its worker died, or its result
   * was lost): a true observation whose bytes nobody billed, so the next reading is measured from it, with what it
   * billed carried (observe, finish).
   */
  /**
   * Whether the client was seen present before this pass: by a committed tick, or by a tick that did not commit (its
   * reading is a true observation, and the base it left; taking the next reading as a first sighting again would lose
   * every byte between the two).
   */
  private sightedBefore(ib: number, stale: boolean): boolean {
    const seen = FLAG_PRESENT | FLAG_KNOWN;
    if (this.ints[ib + I_C_TICK] !== 0 && (this.ints[ib + I_C_FLAGS]! & seen) !== 0) return true;
    return stale && (this.ints[ib + I_P_FLAGS]! & seen) !== 0;
  }

  private stale(ib: number): boolean {
    const pTick = this.ints[ib + I_P_TICK]!;
    return pTick > this.committed && pTick !== this.tick;
  }

  /**
   * A pending reading from a committed tick becomes the base. The tick loop does this on the main thread once the
   * tick's apply is over, thrown or not (TableView.settle), so a pass finds nothing to do here: a safety net for a
   * table committed without the loop (tests, tools), not a path the daemon takes.
   */
  private promote(slot: number): void {
    promoteSlot(this.ints, this.floats, slot, this.committed);
  }

  private writePending(
    slot: number,
    flags: number,
    token: number,
    down: number,
    up: number,
    billedDown: number,
    billedUp: number,
  ): void {
    const ib = HEADER_INTS + slot * INT_STRIDE;
    const fb = slot * FLOAT_STRIDE;
    this.floats[fb + F_P_DOWN] = down;
    this.floats[fb + F_P_UP] = up;
    this.floats[fb + F_P_BILLED_DOWN] = billedDown;
    this.floats[fb + F_P_BILLED_UP] = billedUp;
    this.ints[ib + I_P_TOKEN] = token;
    this.ints[ib + I_P_FLAGS] = flags;
    this.ints[ib + I_P_TICK] = this.tick;
    this.mirror(slot);
  }

  /**
   * Once this tick has grown the table it writes to the new generation, which the main thread adopts only if the tick
   * commits; the slot is copied into the one it began on too, which the main thread keeps otherwise: the readings an
   * uncommitted growth tick took after the growth are the next tick's base as those it took before it are (else an
   * epoch that ended right after lost what only they read).
   */
  private mirror(slot: number): void {
    if (slot >= this.startSlots) return;
    const ib = HEADER_INTS + slot * INT_STRIDE;
    const fb = slot * FLOAT_STRIDE;
    this.startInts!.set(this.ints.subarray(ib, ib + INT_STRIDE), ib);
    this.startFloats!.set(this.floats.subarray(fb, fb + FLOAT_STRIDE), fb);
  }

  private allocate(macHi: number, macLo: number): number {
    const slot = this.indexedCount;
    if (slot >= tableCapacity(this.table!)) {
      // Writes so far this tick went to the old generation and are copied; the old one stays valid for the main thread
      // if this tick never commits.
      if (this.startInts === undefined) {
        const start = this.tickTable!;
        this.startInts = new Int32Array(start.ints);
        this.startFloats = new Float64Array(start.floats);
        this.startSlots = tableCapacity(start);
      }
      const next = growTable(this.table!, slot + 1);
      this.table = next;
      this.attachedId = tableId(next);
      this.ints = new Int32Array(next.ints);
      this.floats = new Float64Array(next.floats);
      this.grown = true;
    }
    const ib = HEADER_INTS + slot * INT_STRIDE;
    this.ints.fill(0, ib, ib + INT_STRIDE);
    this.floats.fill(0, slot * FLOAT_STRIDE, (slot + 1) * FLOAT_STRIDE);
    this.ints[ib + I_MAC_HI] = macHi;
    this.ints[ib + I_MAC_LO] = macLo | 0;
    this.insert(slot);
    this.indexedCount = slot + 1;
    Atomics.store(this.ints, H_SLOT_COUNT, slot + 1);
    return slot;
  }

  private pushDelta(slot: number, down: number, up: number): void {
    if (this.deltaCount === this.deltaSlots.length) {
      const size = this.deltaSlots.length * 2;
      const slots = new Uint32Array(size);
      slots.set(this.deltaSlots);
      this.deltaSlots = slots;
      const d = new Float64Array(size);
      d.set(this.deltaDown);
      this.deltaDown = d;
      const u = new Float64Array(size);
      u.set(this.deltaUp);
      this.deltaUp = u;
    }
    this.deltaSlots[this.deltaCount] = slot;
    this.deltaDown[this.deltaCount] = down;
    this.deltaUp[this.deltaCount] = up;
    this.deltaCount++;
  }
}
