/**
 * The usage the meter billed but the journal does not have yet, per session, summed over ticks. Upstream (MQTT, the
 * hook, RADIUS accounting) hears a session's usage only once a write that holds it is on flash: a usage checkpoint
 * (take/release) or the session's end record (end/ended). Told before, a kill -9 or a power cut would leave the fleet
 * with bytes and seconds the router's own records lose, and the fleet is to equal them. The cost is freshness: usage
 * reaches upstream once per checkpoint interval (main.checkpoint_interval), never an extra fsync.
 */
import type { UsageReport } from './manager-types.ts';

export class UsageHold {
  /** Billed since the last checkpoint took it, by session id. */
  private readonly pending = new Map<string, UsageReport>();
  /** Sessions whose end record is being written: their last usage goes out with the end (null: none billed). */
  private readonly ending = new Map<string, UsageReport | null>();

  get size(): number {
    return this.pending.size + this.ending.size;
  }

  /** One tick's reports, summed into what each session has waiting. */
  add(batch: readonly UsageReport[]): void {
    for (const u of batch) {
      if (this.ending.has(u.sessionId)) {
        const held = this.ending.get(u.sessionId) ?? null;
        this.ending.set(u.sessionId, held === null ? { ...u } : merged(held, u));
        continue;
      }
      const held = this.pending.get(u.sessionId);
      this.pending.set(u.sessionId, held === undefined ? { ...u } : merged(held, u));
    }
  }

  /** What a checkpoint writing these sessions' totals covers: taken out, to be released once the write is durable. */
  take(ids: Iterable<string>): UsageReport[] {
    const out: UsageReport[] = [];
    for (const id of ids) {
      const held = this.pending.get(id);
      if (held === undefined) continue;
      this.pending.delete(id);
      out.push(held);
    }
    return out;
  }

  /** A checkpoint the store refused: its usage waits for the next one, before what was billed since. */
  putBack(reports: readonly UsageReport[]): void {
    for (const u of reports) {
      // Ended meanwhile: it goes with the end record, which comes after this checkpoint in the journal.
      const into = this.ending.has(u.sessionId) ? this.ending : this.pending;
      const later = into.get(u.sessionId) ?? undefined;
      into.set(u.sessionId, later === undefined ? u : merged({ ...u }, later));
    }
  }

  /** The session ended: what it has waiting, and what its last tick still reports, go out with its end record. */
  end(id: string): void {
    const held = this.pending.get(id) ?? null;
    this.pending.delete(id);
    this.ending.set(id, held);
  }

  /** Its end record is durable: its usage to release (null: none). */
  ended(id: string): UsageReport | null {
    const held = this.ending.get(id) ?? null;
    this.ending.delete(id);
    return held;
  }
}

/** `later` added into `held` (mutated: it is the hold's own copy). */
function merged(held: UsageReport, later: UsageReport): UsageReport {
  held.deltaBytes += later.deltaBytes;
  held.deltaDownloadBytes += later.deltaDownloadBytes;
  held.deltaUploadBytes += later.deltaUploadBytes;
  held.remainingBytes = later.remainingBytes;
  held.exhausted ||= later.exhausted;
  held.mac = later.mac;
  if (later.slot !== undefined) held.slot = later.slot;
  if (later.billedAheadBytes !== undefined) {
    held.billedAheadBytes = (held.billedAheadBytes ?? 0) + later.billedAheadBytes;
    if (later.cutRate !== undefined) held.cutRate = later.cutRate;
    if (later.cutCloseMs !== undefined) held.cutCloseMs = later.cutCloseMs;
  }
  if (later.stoppedByKernel) held.stoppedByKernel = true;
  return held;
}
