/**
 * The nonces of PC-sync calls seen within the window, kept on flash (`<state_dir>/pcsync-nonces.json`, written
 * atomically and fsynced) so a replay is refused after a restart too. `claim` writes the nonce BEFORE the caller acts:
 * a kill -9 between the two loses at most a logout that never ran (the PC system sees no answer and sends a new call),
 * never runs one signed call twice. A nonce that cannot be written is refused (ERR_PCSYNC_STORE) and stays burned in
 * memory, so it cannot run in this process either.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SluiceError } from '../errors.ts';
import { writeFileAtomic } from '../storage/index.ts';

export const PCSYNC_NONCES_FILE = 'pcsync-nonces.json';

/** Far more than any PC system sends within a window; past it the oldest are dropped so the file stays small. */
const MAX_NONCES = 10_000;

export class NonceLedger {
  /** nonce → the call's timestamp (ms). */
  private readonly seen = new Map<string, number>();
  /** Writes run one after another, each with every nonce seen so far: a later write never loses an earlier one. */
  private saving: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string | null, private readonly windowMs: number) {}

  /** Restores the nonces saved in `dir` (none, or a damaged file: starts empty). `dir` null keeps them in memory only (tests). */
  static async open(dir: string | null, windowMs: number): Promise<NonceLedger> {
    const ledger = new NonceLedger(dir === null ? null : join(dir, PCSYNC_NONCES_FILE), windowMs);
    if (ledger.file !== null) {
      try {
        const saved = JSON.parse(await readFile(ledger.file, 'utf8')) as unknown;
        if (Array.isArray(saved)) {
          for (const e of saved) if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number') ledger.seen.set(e[0], e[1]);
        }
      } catch {
        // None yet (or unreadable: the window's timestamps still bound what a replay can do).
      }
    }
    return ledger;
  }

  /**
   * Records `nonce` and resolves once it is on flash; throws ERR_PCSYNC_REPLAYED when it was seen within the window,
   * ERR_PCSYNC_STORE when it could not be written.
   */
  async claim(nonce: string, timestamp: number, now: number): Promise<void> {
    this.prune(now);
    if (this.seen.has(nonce)) throw new SluiceError('ERR_PCSYNC_REPLAYED', 'nonce already used: replay refused');
    this.seen.set(nonce, timestamp);
    if (this.seen.size > MAX_NONCES) this.seen.delete(this.seen.keys().next().value!);
    if (this.file === null) return;
    const file = this.file;
    // The snapshot is taken when this write starts, after those queued before it: it holds them all.
    const write = this.saving.then(() => writeFileAtomic(file, JSON.stringify([...this.seen]), { mode: 0o600 }));
    this.saving = write.catch(() => undefined);
    try {
      await write;
    } catch (err) {
      throw new SluiceError('ERR_PCSYNC_STORE', `nonce not saved, logout not run: ${(err as Error).message}`, { cause: err });
    }
  }

  private prune(now: number): void {
    // A timestamp up to the window in the future is accepted too: keep each nonce until its timestamp left the window.
    for (const [n, ts] of this.seen) if (ts < now - this.windowMs) this.seen.delete(n);
  }
}
