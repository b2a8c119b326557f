/**
 * The counter table shared between the main thread and the usage workers (SharedArrayBuffer).
 *
 * Why shared memory: a Piscina task may land on any worker thread, and a worker that crashes loses its heap. The
 * per-MAC epoch state must survive both, and handing 100k per-client objects to the main thread costs it 60–90 ms.
 * The main thread owns the table; workers read and write it; only tick results that changed travel back.
 *
 * Crash safety is a two-phase commit per slot: a worker writes this tick's reading into the "pending" half (P) stamped
 * with the tick number; the main thread, after it has applied the tick's deltas, stores that tick number as
 * `committedTick`. A pending reading becomes the committed one once its tick was committed; a tick that failed
 * (worker crash, timeout, thrown error) leaves its pending halves uncommitted, true readings nobody billed: the next
 * tick measures from them and bills what that tick billed on top (pBilled, below): nothing is lost, nothing is counted
 * twice.
 *
 * Layout (one Int32 and one Float64 SharedArrayBuffer per table generation; growth makes a new generation):
 *   ints[0..HEADER_INTS)               header: committedTick, slotCount, tableId
 *   ints[HEADER_INTS + slot*INT_STRIDE] macHi(16 bits) macLo(32 bits) cTick cFlags cToken pTick pFlags pToken
 *   floats[slot*FLOAT_STRIDE]           cDown cUp pDown pUp pBilledDown pBilledUp   (bytes, exact integers below 2^53)
 * pBilled is what the pending tick billed for the slot: if that tick never commits, the next one bills it again, on top
 * of what it adds to the pending reading (epochs.ts), since the pending reading may belong to an epoch the committed
 * half never saw.
 * flags: bit 0 = present in that snapshot, bits 1..3 = portal state code (STATE_CODES). MACs are stored as the two
 * integers of macToParts (portal).
 */
import { macFromParts, macToParts, STATE_CODES, STATE_NAMES, type PortalStateName } from '../portal/index.ts';

export const HEADER_INTS = 4;
export const H_COMMITTED_TICK = 0;
export const H_SLOT_COUNT = 1;
/** Random id of a table generation: a SharedArrayBuffer arrives in a worker as a new object every task, so threads
 *  recognise "the same table" by this id, not by identity. */
export const H_TABLE_ID = 2;

export const INT_STRIDE = 8;
export const I_MAC_HI = 0;
export const I_MAC_LO = 1;
export const I_C_TICK = 2;
export const I_C_FLAGS = 3;
export const I_C_TOKEN = 4;
export const I_P_TICK = 5;
export const I_P_FLAGS = 6;
export const I_P_TOKEN = 7;

export const FLOAT_STRIDE = 6;
export const F_C_DOWN = 0;
export const F_C_UP = 1;
export const F_P_DOWN = 2;
export const F_P_UP = 3;
export const F_P_BILLED_DOWN = 4;
export const F_P_BILLED_UP = 5;

export const FLAG_PRESENT = 1;
/** Set on a slot whose client has been committed present at least once: its return after absence is a new epoch. */
export const FLAG_KNOWN = 16;

export interface CounterTable {
  ints: SharedArrayBuffer;
  floats: SharedArrayBuffer;
}

export function createTable(capacity: number): CounterTable {
  const slots = Math.max(16, Math.ceil(capacity));
  const table = {
    ints: new SharedArrayBuffer((HEADER_INTS + slots * INT_STRIDE) * 4),
    floats: new SharedArrayBuffer(slots * FLOAT_STRIDE * 8),
  };
  new Int32Array(table.ints)[H_TABLE_ID] = newTableId();
  return table;
}

function newTableId(): number {
  return (Math.random() * 0x7fffffff) | 1;
}

export function tableId(table: CounterTable): number {
  return Atomics.load(new Int32Array(table.ints, 0, HEADER_INTS), H_TABLE_ID);
}

export function tableCapacity(table: CounterTable): number {
  return table.floats.byteLength / 8 / FLOAT_STRIDE;
}

/** A bigger generation holding a copy of every slot and the header. */
export function growTable(table: CounterTable, minCapacity: number): CounterTable {
  const next = createTable(Math.max(minCapacity, tableCapacity(table) * 2));
  const ints = new Int32Array(next.ints);
  const id = ints[H_TABLE_ID]!;
  ints.set(new Int32Array(table.ints));
  ints[H_TABLE_ID] = id;
  new Float64Array(next.floats).set(new Float64Array(table.floats));
  return next;
}

/** A client's last committed counter reading, as checkpoints persist it (sessions' MeterMark). */
export interface CounterMark {
  token: number;
  down: number;
  up: number;
}

/**
 * The last committed reading of every present client. A checkpoint stores it next to the usage it already includes,
 * so a restarted meter bills from there instead of taking its first reading as a new base (which would forgive the
 * bytes that passed while sluice was down). `asOf`: the readings as of that committed tick instead of the last one
 * (a tick committed and not yet billed: TickLoop.billedMarks).
 */
export function committedMarks(table: CounterTable, asOf?: number): Map<string, CounterMark> {
  const ints = new Int32Array(table.ints);
  const floats = new Float64Array(table.floats);
  const count = Atomics.load(ints, H_SLOT_COUNT);
  const committed = asOf ?? Atomics.load(ints, H_COMMITTED_TICK);
  const marks = new Map<string, CounterMark>();
  for (let slot = 0; slot < count; slot++) {
    const half = committedHalf(ints, slot, committed);
    if (half !== NO_HALF)
      marks.set(
        macFromParts(
          ints[HEADER_INTS + slot * INT_STRIDE + I_MAC_HI]!,
          ints[HEADER_INTS + slot * INT_STRIDE + I_MAC_LO]!,
        ),
        markOf(ints, floats, slot, half),
      );
  }
  return marks;
}

/**
 * One slot's last committed reading (a pending half whose tick was committed counts) with its portal state code, or
 * undefined when nothing is committed for it or the client was absent then.
 */
export function committedReading(table: CounterTable, slot: number): { mark: CounterMark; state: number } | undefined {
  const ints = new Int32Array(table.ints);
  if (slot < 0 || slot >= Atomics.load(ints, H_SLOT_COUNT)) return undefined;
  return readCommitted(ints, new Float64Array(table.floats), slot);
}

/** Whether the slot's pending half holds a committed reading its committed half does not have yet. */
function pendingCommitted(ints: Int32Array<ArrayBufferLike>, ib: number, committed: number): boolean {
  const pTick = ints[ib + I_P_TICK]!;
  return pTick !== 0 && pTick <= committed && pTick > ints[ib + I_C_TICK]!;
}

/**
 * Moves the slot's pending reading into its committed half if its tick is committed (`committed`): the one rule for
 * the tick loop's settle and a worker's promote (epochs.ts). The tick goes last: a reader on this thread never sees it.
 */
export function promoteSlot(
  ints: Int32Array<ArrayBufferLike>,
  floats: Float64Array<ArrayBufferLike>,
  slot: number,
  committed: number,
): void {
  const ib = HEADER_INTS + slot * INT_STRIDE;
  if (!pendingCommitted(ints, ib, committed)) return;
  const fb = slot * FLOAT_STRIDE;
  ints[ib + I_C_FLAGS] = ints[ib + I_P_FLAGS]!;
  ints[ib + I_C_TOKEN] = ints[ib + I_P_TOKEN]!;
  floats[fb + F_C_DOWN] = floats[fb + F_P_DOWN]!;
  floats[fb + F_C_UP] = floats[fb + F_P_UP]!;
  ints[ib + I_C_TICK] = ints[ib + I_P_TICK]!;
}

function readCommitted(
  ints: Int32Array,
  floats: Float64Array,
  slot: number,
  asOf = Atomics.load(ints, H_COMMITTED_TICK),
): { mark: CounterMark; state: number } | undefined {
  const half = committedHalf(ints, slot, asOf);
  if (half === NO_HALF) return undefined;
  const flags = ints[HEADER_INTS + slot * INT_STRIDE + (half === PENDING_HALF ? I_P_FLAGS : I_C_FLAGS)]!;
  return { mark: markOf(ints, floats, slot, half), state: (flags >> 1) & 7 };
}

const NO_HALF = 0;
const COMMITTED_HALF = 1;
const PENDING_HALF = 2;
type Half = typeof NO_HALF | typeof COMMITTED_HALF | typeof PENDING_HALF;

/**
 * Which half of a slot holds its last reading committed as of tick `asOf` (the pending one once its tick was
 * committed); NO_HALF when nothing is committed for it or the client was absent then. A checkpoint's committedMarks
 * asks it of every slot, making no object for a slot it lists none for.
 */
function committedHalf(ints: Int32Array, slot: number, asOf: number): Half {
  const ib = HEADER_INTS + slot * INT_STRIDE;
  const pending = pendingCommitted(ints, ib, asOf);
  const tick = ints[ib + (pending ? I_P_TICK : I_C_TICK)]!;
  const flags = ints[ib + (pending ? I_P_FLAGS : I_C_FLAGS)]!;
  if (tick === 0 || (flags & FLAG_PRESENT) === 0) return NO_HALF;
  return pending ? PENDING_HALF : COMMITTED_HALF;
}

/** The reading in a slot's half (committedHalf's). */
function markOf(ints: Int32Array, floats: Float64Array, slot: number, half: Half): CounterMark {
  const ib = HEADER_INTS + slot * INT_STRIDE;
  const fb = slot * FLOAT_STRIDE;
  const pending = half === PENDING_HALF;
  return {
    token: ints[ib + (pending ? I_P_TOKEN : I_C_TOKEN)]!,
    down: floats[fb + (pending ? F_P_DOWN : F_C_DOWN)]!,
    up: floats[fb + (pending ? F_P_UP : F_C_UP)]!,
  };
}

/**
 * A table whose slots start from persisted marks, committed at `tick` as present, authenticated and known: the next
 * reading with the same token continues the epoch (delta = reading − mark); a changed token or a lower reading starts
 * a new one, as always.
 */
export function seedTable(
  marks: ReadonlyArray<readonly [mac: string, mark: CounterMark]>,
  capacity: number,
  tick: number,
): CounterTable {
  const valid = marks.filter(([mac]) => macToParts(mac) !== undefined);
  const table = createTable(Math.max(capacity, valid.length * 2));
  const ints = new Int32Array(table.ints);
  const floats = new Float64Array(table.floats);
  valid.forEach(([mac, mark], slot) => {
    const [hi, lo] = macToParts(mac)!;
    const ib = HEADER_INTS + slot * INT_STRIDE;
    ints[ib + I_MAC_HI] = hi;
    ints[ib + I_MAC_LO] = lo | 0;
    ints[ib + I_C_TICK] = tick;
    ints[ib + I_C_FLAGS] = FLAG_PRESENT | (STATE_CODES.Authenticated << 1) | FLAG_KNOWN;
    ints[ib + I_C_TOKEN] = mark.token;
    floats[slot * FLOAT_STRIDE + F_C_DOWN] = mark.down;
    floats[slot * FLOAT_STRIDE + F_C_UP] = mark.up;
  });
  ints[H_SLOT_COUNT] = valid.length;
  ints[H_COMMITTED_TICK] = tick;
  return table;
}

/** What the main thread reads from a committed tick: where each slot's client is and what state it is in. */
export class TableView {
  readonly ints: Int32Array;
  readonly floats: Float64Array;
  constructor(readonly table: CounterTable) {
    this.ints = new Int32Array(table.ints);
    this.floats = new Float64Array(table.floats);
  }
  commit(tick: number): void {
    Atomics.store(this.ints, H_COMMITTED_TICK, tick);
  }
  get committedTick(): number {
    return Atomics.load(this.ints, H_COMMITTED_TICK);
  }
  /**
   * After a committed tick's apply: its pending readings become the committed ones here, on the main thread, while no
   * worker runs (ticks never overlap). Else the next tick's worker would move them (epochs.ts promote) while a usage
   * checkpoint on the main thread reads them (committedMarks): a mark read half-moved, the tick number new and the
   * bytes old, would be behind the usage stored with it, and a restart would bill those bytes again. The worker then
   * writes only pending halves, which a reader takes only from a committed tick. (The apply reads the committed half
   * as the reading before this one: startsEpoch, previousFlags; so not before it ends.)
   */
  settle(tick: number): void {
    const count = Atomics.load(this.ints, H_SLOT_COUNT);
    for (let slot = 0; slot < count; slot++) promoteSlot(this.ints, this.floats, slot, tick);
  }
  get slotCount(): number {
    return Atomics.load(this.ints, H_SLOT_COUNT);
  }
  mac(slot: number): string {
    const base = HEADER_INTS + slot * INT_STRIDE;
    return macFromParts(this.ints[base + I_MAC_HI]!, this.ints[base + I_MAC_LO]!);
  }
  /** Presence and state as of `tick` (the pending half, which the main thread reads right after that tick). */
  observation(slot: number, tick: number): { present: boolean; state: PortalStateName } | undefined {
    const flags = this.flags(slot, tick);
    if (flags < 0) return undefined;
    return { present: (flags & FLAG_PRESENT) !== 0, state: STATE_NAMES[(flags >> 1) & 7] ?? 'other' };
  }
  /** Raw flags as of `tick` (FLAG_PRESENT | state code << 1), -1 if the slot was not written by that tick. */
  flags(slot: number, tick: number): number {
    const base = HEADER_INTS + slot * INT_STRIDE;
    if (this.ints[base + I_P_TICK] !== tick) return -1;
    return this.ints[base + I_P_FLAGS]! & 15;
  }
  /**
   * What tick `tick` billed the slot's client (the pending half's carry, [download, upload]) when that tick wrote it
   * present; undefined otherwise. Read after a tick that did not commit (meter/purchase-bases.ts).
   */
  pendingCarry(slot: number, tick: number): [down: number, up: number] | undefined {
    const flags = this.flags(slot, tick);
    if (flags < 0 || (flags & FLAG_PRESENT) === 0) return undefined;
    const fb = slot * FLOAT_STRIDE;
    return [this.floats[fb + F_P_BILLED_DOWN]!, this.floats[fb + F_P_BILLED_UP]!];
  }
  /** [download, upload] bytes of the reading just written (the pending half). */
  readingParts(slot: number): [down: number, up: number] {
    return [this.floats[slot * FLOAT_STRIDE + F_P_DOWN]!, this.floats[slot * FLOAT_STRIDE + F_P_UP]!];
  }
  /**
   * Whether the reading just written begins a counter epoch: nothing committed before it, or the previous reading had
   * the client absent or with its gate closed, or the token changed, or a counter went down (the epoch rules of
   * epochs.ts, which a glitch-sized same-token dip does not meet).
   */
  startsEpoch(slot: number): boolean {
    const ib = HEADER_INTS + slot * INT_STRIDE;
    const fb = slot * FLOAT_STRIDE;
    const ints = this.ints;
    const cFlags = ints[ib + I_C_FLAGS]!;
    if (ints[ib + I_C_TICK] === 0 || (cFlags & FLAG_PRESENT) === 0) return true;
    const state = (cFlags >> 1) & 7;
    if (state !== STATE_CODES.Authenticated && state !== STATE_CODES.Trusted && state !== STATE_CODES.AuthBlocked)
      return true;
    if (ints[ib + I_P_TOKEN] !== ints[ib + I_C_TOKEN]) return true;
    return (
      this.floats[fb + F_P_DOWN]! < this.floats[fb + F_C_DOWN]! || this.floats[fb + F_P_UP]! < this.floats[fb + F_C_UP]!
    );
  }
  /**
   * Flags of the reading before the one just written (the committed half), -1 if there is none. Tells whether the
   * gate was closed at the previous tick: then every byte of this tick's delta passed after a later auth.
   */
  previousFlags(slot: number): number {
    const base = HEADER_INTS + slot * INT_STRIDE;
    if (this.ints[base + I_C_TICK] === 0) return -1;
    return this.ints[base + I_C_FLAGS]! & 15;
  }
}
