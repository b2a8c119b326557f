/**
 * The portal's own deauths, as the package's BinAuth reports them (binauth-tokens.ts): openNDS runs it on every deauth,
 * its own too (`idle_deauth` and `timeout_deauth` when it times a client out, `ndsctl_deauth` for an admin's `ndsctl
 * deauth`), and the script empties `sluice-tokens/<mac>` then. A watch on that directory (inotify: no process, no
 * portal call) tells the meter a gate closed that no tick would have seen: on the kernel's counters the portal is
 * listed only when something changed, and without this report a paying client's counters that stopped moving had to be
 * listed for (the stall: a listing runs openNDS's script for every client, ≈ 3 s of its CPU at 32 clients on 10.3.1,
 * and a café's phones stop and start all day).
 *
 * The directory is made by the BinAuth at its first run: until it exists (no BinAuth, none run yet) or after it went
 * (a reboot's tmpfs, an admin's rm), the watch looks for it again every `retryMs` and reports nothing: the meter
 * lists for a stall that began before the watch was up (`liveSince`), as without it. A file is read as any BinAuth
 * record (trusted owner and mode, no link, small): one still empty BINAUTH_SETTLE_MS after it was emptied is a deauth,
 * reported once until it names a token again (an auth: nothing to report).
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import { tryNormalizeMac } from '../mac.ts';
import { systemClock, systemTimers, type Clock, type Timers } from '../time.ts';
import { BINAUTH_TOKENS_DIR, readBinauthRecord } from './binauth-tokens.ts';

/** How often a watch not running looks for the directory again (a stat, when it fires). */
export const BINAUTH_WATCH_RETRY_MS = 10_000;
/**
 * An emptied record is read again this much later, and reported only if still empty: an auth's `printf … > record`
 * empties the file before it writes the token (an event in between reads empty), and openNDS runs the BinAuth in the
 * middle of its deauth (an auth sent at once was refused on 10.3.1 in the lab).
 */
export const BINAUTH_SETTLE_MS = 1000;
const REPORTED_MAX = 4096;

export interface BinauthWatchOptions {
  /** The portal's control socket now (the directory is beside it); undefined: none known. */
  socketPath: () => string | undefined;
  retryMs?: number;
  settleMs?: number;
  clock?: Clock;
  timers?: Timers;
}

export class BinauthWatch {
  readonly #options: BinauthWatchOptions;
  readonly #timers: Timers;
  #watcher: FSWatcher | undefined;
  #dir: string | undefined;
  #liveSince: number | undefined;
  #retry: unknown;
  #closed = false;
  readonly #listeners: Array<(mac: string) => void> = [];
  /** Records read empty, waiting for their second read (a timer each); and those reported since last read full. */
  readonly #settling = new Map<string, unknown>();
  readonly #reported = new Set<string>();
  /** Deauths reported since start (stats, tests). */
  deauths = 0;

  constructor(options: BinauthWatchOptions) {
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
  }

  /** `listener` hears each gate the portal closed (its BinAuth ran a deauth for this MAC, canonical). */
  onDeauth(listener: (mac: string) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Since when (clock ms) the portal's deauths are reported without a gap: the directory is watched. undefined: not
   * now. A gate closed before then (the BinAuth's first run made the directory, the watch came up at its next look) was
   * not seen closing.
   */
  get liveSince(): number | undefined {
    return this.#liveSince;
  }

  start(): void {
    if (this.#closed || this.#watcher !== undefined) return;
    const socket = this.#options.socketPath();
    const dir = socket === undefined ? undefined : join(dirname(socket), BINAUTH_TOKENS_DIR);
    if (dir !== undefined) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, file) => {
          // The directory itself removed (an admin's rm, a portal's cleanup): inotify says so by its name, not by an
          // error, and a watch left on it would hear nothing from the one the BinAuth makes next.
          if (file === BINAUTH_TOKENS_DIR) this.#lost(watcher);
          else if (file !== null) void this.#changed(dir, file);
        });
        watcher.on('error', () => this.#lost(watcher));
        this.#watcher = watcher;
        this.#dir = dir;
        this.#liveSince = (this.#options.clock ?? systemClock).now();
        return;
      } catch {
        // Not there yet (no BinAuth run), or not ours to watch: looked for again.
      }
    }
    this.#retry = this.#timers.setTimeout(() => {
      this.#retry = undefined;
      this.start();
    }, this.#options.retryMs ?? BINAUTH_WATCH_RETRY_MS);
    // A look for a directory keeps no daemon from stopping.
    (this.#retry as { unref?: () => void } | undefined)?.unref?.();
  }

  close(): void {
    this.#closed = true;
    this.#timers.clearTimeout(this.#retry);
    for (const timer of this.#settling.values()) this.#timers.clearTimeout(timer);
    this.#settling.clear();
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#liveSince = undefined;
  }

  async #changed(dir: string, file: string): Promise<void> {
    const mac = tryNormalizeMac(file);
    if (mac === null || file.toLowerCase() !== mac || dir !== this.#dir) return;
    const record = await readBinauthRecord(join(dir, file));
    if (record === undefined) return;
    if (record !== '') {
      this.#reported.delete(mac);
      return;
    }
    if (this.#settling.has(mac) || this.#reported.has(mac)) return;
    const timer = this.#timers.setTimeout(() => {
      this.#settling.delete(mac);
      void this.#settled(dir, file, mac);
    }, this.#options.settleMs ?? BINAUTH_SETTLE_MS);
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.#settling.set(mac, timer);
  }

  /** The second read of an emptied record: still empty, a deauth, reported once until the record is full again. */
  async #settled(dir: string, file: string, mac: string): Promise<void> {
    if (this.#closed || dir !== this.#dir || (await readBinauthRecord(join(dir, file))) !== '') return;
    if (this.#reported.has(mac)) return;
    // Bounded: at most one entry per client the BinAuth saw; the oldest go first.
    if (this.#reported.size >= REPORTED_MAX) this.#reported.delete(this.#reported.values().next().value!);
    this.#reported.add(mac);
    this.deauths++;
    for (const listener of this.#listeners) listener(mac);
  }

  /** The directory went (or cannot be watched any more): stall listings again until it is back. */
  #lost(watcher: FSWatcher): void {
    if (this.#watcher !== watcher) return;
    watcher.close();
    this.#watcher = undefined;
    this.#dir = undefined;
    this.#liveSince = undefined;
    this.start();
  }
}
