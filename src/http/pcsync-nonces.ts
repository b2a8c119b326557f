/**
 * The nonces of PC-sync calls seen within the window, kept on flash (`<state_dir>/pcsync-nonces.json`, written
 * atomically and fsynced) so a replay is refused after a restart too. `claim` writes the nonce BEFORE the caller acts:
 * a kill -9 between the two loses at most a logout that never ran (the PC system sees no answer and sends a new call),
 * never runs one signed call twice. A nonce that cannot be written is refused (ERR_PCSYNC_STORE) and stays burned in
 * memory, so it cannot run in this process either.
 *
 * A damaged file (storage/nonce-file.ts) is not read as "no nonces": a logout captured before the restart would end the
 * user's NEW session. Every call signed up to the start plus one window is refused instead (ERR_PCSYNC_NONCES_LOST):
 * a call the lost file held was accepted before the start, so its timestamp is at most a window past it. The floor is
 * saved with the nonces, so it outlives a restart; past it, calls run as usual.
 */
import { join } from 'node:path';
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import { openNonceFile, saveNonces, type NonceTable } from '../storage/index.ts';

export const PCSYNC_NONCES_FILE = 'pcsync-nonces.json';

/** Far more than any PC system sends within a window; past it the oldest are dropped so the file stays small. */
const MAX_NONCES = 10_000;

/**
 * `stats` → `pcsync`: what the nonce check did since start, and whether the record of used nonces was found damaged.
 */
export interface PcSyncFigures {
  /**
   * 'ok', or 'damaged' while calls signed up to `refused_up_to` (ms) are refused (the file was found damaged at a
   * start); back to 'ok' once that is a window in the past (the window alone refuses those calls then).
   */
  nonces: 'ok' | 'damaged';
  refused_up_to: number | null;
  /** Nonces written before their logout ran. */
  claimed: number;
  /** Refused ERR_PCSYNC_REPLAYED, ERR_PCSYNC_NONCES_LOST, ERR_PCSYNC_STORE. */
  replayed: number;
  refused_nonces_lost: number;
  not_saved: number;
}

export class NonceLedger {
  /** nonce → the call's timestamp (ms). */
  private readonly seen = new Map<string, number>();
  /** Calls signed at or before this (ms) are refused: the record of the nonces seen up to then was lost. */
  private refusedUpTo: number | null = null;
  readonly figures: PcSyncFigures = {
    nonces: 'ok',
    refused_up_to: null,
    claimed: 0,
    replayed: 0,
    refused_nonces_lost: 0,
    not_saved: 0,
  };

  private constructor(
    private readonly file: NonceTable | null,
    private readonly windowMs: number,
  ) {}

  /**
   * Restores the nonces saved in `dir` (none yet: starts empty; damaged: refuses what it may have held, logged).
   * `dir` null keeps them in memory only (tests).
   */
  static async open(dir: string | null, windowMs: number, now: number = Date.now(), log?: Log): Promise<NonceLedger> {
    if (dir === null) return new NonceLedger(null, windowMs);
    const file = join(dir, PCSYNC_NONCES_FILE);
    const read = await openNonceFile(file, PCSYNC_NONCES_FILE, 'ERR_PCSYNC_NONCES_LOST');
    const ledger = new NonceLedger(read.table, windowMs);
    for (const [n, ts] of read.seen.nonces) ledger.seen.set(n, ts);
    ledger.refusedUpTo = read.seen.refusedUpTo;
    if (read.damaged !== null) {
      ledger.refusedUpTo = now + windowMs;
      log?.error('pcsync: the record of used nonces is damaged: logouts signed before refused_up_to are refused', {
        code: 'ERR_PCSYNC_NONCES_LOST',
        reason: read.damaged,
        file,
        refused_up_to: new Date(ledger.refusedUpTo).toISOString(),
      });
    }
    ledger.setFloor(ledger.refusedUpTo);
    return ledger;
  }

  /**
   * Records `nonce` and resolves once it is on flash; throws ERR_PCSYNC_REPLAYED when it was seen within the window,
   * ERR_PCSYNC_NONCES_LOST when it was signed before the record of nonces was lost, ERR_PCSYNC_STORE when it could
   * not be written.
   */
  async claim(nonce: string, timestamp: number, now: number): Promise<void> {
    this.prune(now);
    if (this.seen.has(nonce))
      throw this.refused(new SluiceError('ERR_PCSYNC_REPLAYED', 'nonce already used: replay refused'));
    if (this.refusedUpTo !== null && timestamp <= this.refusedUpTo) {
      throw this.refused(
        new SluiceError(
          'ERR_PCSYNC_NONCES_LOST',
          `the record of used PC-sync nonces (${PCSYNC_NONCES_FILE}) was damaged: calls signed up ` +
            `to ${new Date(this.refusedUpTo).toISOString()} ` +
            'are refused, as they may have run already; send it again after that time (docs/operations.md)',
          { details: { refused_up_to: this.refusedUpTo } },
        ),
      );
    }
    this.seen.set(nonce, timestamp);
    if (this.seen.size > MAX_NONCES) this.seen.delete(this.seen.keys().next().value!);
    if (this.file !== null) {
      try {
        // Every nonce seen so far, whole: a write queued behind another carries both (storage/json-table.ts).
        await saveNonces(this.file, { nonces: [...this.seen], refusedUpTo: this.refusedUpTo });
      } catch (err) {
        throw this.refused(
          new SluiceError('ERR_PCSYNC_STORE', `nonce not saved, logout not run: ${(err as Error).message}`, {
            cause: err,
          }),
        );
      }
    }
    this.figures.claimed++;
  }

  private refused(err: SluiceError): SluiceError {
    if (err.code === 'ERR_PCSYNC_REPLAYED') this.figures.replayed++;
    else if (err.code === 'ERR_PCSYNC_NONCES_LOST') this.figures.refused_nonces_lost++;
    else this.figures.not_saved++;
    return err;
  }

  private prune(now: number): void {
    // A timestamp up to the window in the future is accepted too: keep each nonce until its timestamp left the window.
    for (const [n, ts] of this.seen) if (ts < now - this.windowMs) this.seen.delete(n);
    // Every call the floor refuses is refused as expired now: the damage is behind us.
    if (this.refusedUpTo !== null && this.refusedUpTo < now - this.windowMs) this.setFloor(null);
  }

  private setFloor(floor: number | null): void {
    this.refusedUpTo = floor;
    this.figures.nonces = floor === null ? 'ok' : 'damaged';
    this.figures.refused_up_to = floor;
  }

  /** The figures as of `now` (`stats`). */
  stats(now: number): PcSyncFigures {
    this.prune(now);
    return { ...this.figures };
  }
}
