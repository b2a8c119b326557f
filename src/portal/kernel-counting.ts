/**
 * sluice's side of the kernel counters' table (`netdev sluice_count`, portal/kernel-counters.ts): which clients are
 * counted, and every change to it, serialised, one nft batch (one kernel transaction) per change. Counters are keyed by
 * the client's MAC, so an address change needs nothing here.
 *
 * - count(): fresh counters for a client, made just before its auth (the portal's counters would start at 0 there too):
 *   every byte through the gate sluice opens is counted, in a new epoch.
 * - uncount(): its gate closed.
 * - start(): the table an earlier run left is kept in place with the counters of the clients `keep` names (they counted
 *   while sluice was down: the restored marks and the kernel's count continue one epoch), the others deleted; a table
 *   that is missing or not whole is made afresh (every client counts from 0, a new epoch).
 * - rebuild(): the table made again from what sluice knows when a change or a read finds it gone (a firewall reload
 *   flushed it): each client a new epoch from 0, so what passed since the last reading is not billed (logged).
 *
 * Never throws: false from start() (nft missing, no JSON output, a kernel without netdev egress) leaves the meter on
 * the portal's listing.
 */
import { toSluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';
import { silentLogger, type Log } from '../log.ts';
import type { SpawnFn } from './command.ts';
import { nftRunner, type NftRun } from './nft-run.ts';
import {
  COUNTER_DUMP_ARGS,
  COUNTER_TABLE,
  counterTableScript,
  countLines,
  readCounterTable,
  uncountLines,
} from './kernel-counters.ts';

export interface KernelCountersOptions {
  /** `main.nft` as argv (the worker reads the dump with the same command). */
  command: readonly string[];
  /** The LAN device(s) the portal gates (`main.shape_device`, every one): the counters' hooks. */
  devices: readonly string[];
  timeoutMs: number;
  log?: Log;
  spawn?: SpawnFn;
  /** Runs nft (default: `command` through `spawn`); the portal's NftBatcher, to share an event's nft run. */
  run?: NftRun;
}

export class KernelCounters {
  readonly #command: readonly string[];
  readonly #run: NftRun;
  readonly #log: Log;
  readonly #devices: readonly string[];
  /** The clients counted (canonical MACs). */
  readonly #clients = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();
  #enabled = false;
  #rebuilds = 0;
  #failures = 0;
  #changes = 0;
  #found = false;
  /** Turned off for good (off()): start() no longer turns them on. */
  #retired = false;

  constructor(options: KernelCountersOptions) {
    this.#command = options.command;
    this.#run =
      options.run ??
      nftRunner(options.command, options.timeoutMs, options.spawn === undefined ? {} : { spawn: options.spawn });
    this.#log = options.log ?? silentLogger;
    this.#devices = options.devices;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /**
   * Changes when the table was made again: the meter lists the portal after one. Not at count() nor uncount(): an
   * auth's outcome and a close's (with the portal's word on that one client) reach the meter from the gate
   * (Meter.authFinished, the gate's `closed`); a listing after every purchase held the portal's queue in front of the
   * next purchase's auth, and one after every deauth ran openNDS's per-client script for every client.
   */
  get changes(): number {
    return this.#changes;
  }

  /**
   * Whether start() found a table an earlier run left (read with or without JSON): that run metered from the kernel,
   * so the usage marks it journaled are counter epochs, which mean nothing to a meter listing the portal (and the
   * marks of a run that listed it mean nothing to one on new counters).
   */
  get foundEarlierTable(): boolean {
    return this.#found;
  }

  /** The argv of one dump of every counter (`nft -j list table netdev sluice_count`), for the usage worker. */
  get dumpArgv(): string[] {
    return [...this.#command, ...COUNTER_DUMP_ARGS];
  }

  /** Asked for every live session on every tick: a canonical MAC (the sessions') is found without normalizing it. */
  has(mac: string): boolean {
    return this.#enabled && (this.#clients.has(mac) || this.#clients.has(normalizeMac(mac)));
  }

  start(keep: (mac: string) => boolean): Promise<boolean> {
    return this.#serial(async () => {
      if (this.#retired) return false;
      let table: Awaited<ReturnType<typeof readCounterTable>> | null = null;
      try {
        table = await readCounterTable(this.#run);
      } catch {
        table = null; // none (a first start, a reboot), or nft without JSON: the fresh table's read below tells which
        this.#found = await this.#run(['list', 'table', 'netdev', COUNTER_TABLE], '').then(
          () => true,
          () => false,
        );
      }
      if (table !== null) this.#found = true;
      this.#clients.clear();
      try {
        // The table of a sluice that counted at prerouting and postrouting (by address): it would count on uselessly.
        await this.#run(['-f', '-'], `add table inet ${COUNTER_TABLE}\ndelete table inet ${COUNTER_TABLE}\n`).catch(
          () => undefined,
        );
        if (table?.intact === true) {
          const drop = table.readings.filter((r) => !keep(r.mac) || r.key !== r.mac);
          const script = drop.flatMap((r) => uncountLines(r.mac, r.key !== '')).join('\n');
          if (script !== '') await this.#run(['-f', '-'], `${script}\n`);
          for (const r of table.readings) if (!drop.includes(r)) this.#clients.add(r.mac);
        } else {
          await this.#run(['-f', '-'], counterTableScript(this.#devices, []));
        }
        // The meter reads the counters only through `nft -j`: an nft without JSON output could count but never tell.
        if (!(await readCounterTable(this.#run)).intact) throw new Error('the table just made is not whole');
      } catch (err) {
        await this.#turnOff('kernel counters unavailable: the meter lists the portal every tick', err);
        return false;
      }
      this.#enabled = true;
      this.#log.info('kernel counters on', {
        table: `netdev ${COUNTER_TABLE}`,
        devices: this.#devices.join(','),
        carried_over: this.#clients.size,
      });
      return true;
    });
  }

  /** Fresh counters (a new epoch from 0) for a client about to be authed; its earlier ones go in the same batch. */
  count(mac: string, via?: NftRun): Promise<void> {
    return this.#serial(async () => {
      if (!this.#enabled) return;
      const canonical = normalizeMac(mac);
      const script = [...(this.#clients.has(canonical) ? uncountLines(canonical) : []), ...countLines(canonical)];
      await this.#apply(script, () => this.#clients.add(canonical), via);
    });
  }

  /**
   * One client's counters now (one dump of the table; null: not counted, off, or the dump failed): a release's last
   * reading of a client just before its close (upstream/venue-tail.ts), which the ticks' dump would come too late for.
   */
  read(mac: string): Promise<{ down: number; up: number; epoch: number } | null> {
    return this.#serial(async () => {
      const canonical = normalizeMac(mac);
      if (!this.#enabled || !this.#clients.has(canonical)) return null;
      try {
        const r = (await readCounterTable(this.#run)).readings.find((x) => x.mac === canonical);
        return r === undefined ? null : { down: r.downBytes, up: r.upBytes, epoch: r.epoch };
      } catch {
        return null;
      }
    });
  }

  /** A gate sluice closed, or an auth refused: the client's counters go. */
  uncount(mac: string, via?: NftRun): Promise<void> {
    return this.#serial(async () => {
      const canonical = normalizeMac(mac);
      if (!this.#enabled || !this.#clients.has(canonical)) return;
      await this.#apply(uncountLines(canonical), () => this.#clients.delete(canonical), via);
    });
  }

  /**
   * Off until a restart, the table deleted: they count where the customers are not (portal/metering-guard.ts), and the
   * meter lists the portal every tick from the next.
   */
  off(reason: string): Promise<void> {
    return this.#serial(async () => {
      this.#retired = true;
      await this.#turnOff('kernel counters off: the meter lists the portal every tick', new Error(reason));
    });
  }

  /** The table made again from what sluice knows (a read found it gone): every client a new epoch from 0. */
  rebuild(reason: string): Promise<void> {
    return this.#serial(() => this.#rebuild(reason));
  }

  stats(): Record<string, number | boolean> {
    return { enabled: this.#enabled, clients: this.#clients.size, rebuilds: this.#rebuilds, failures: this.#failures };
  }

  async #apply(lines: string[], onDone: () => void, via: NftRun = this.#run): Promise<void> {
    try {
      await via(['-f', '-'], `${lines.join('\n')}\n`);
      onDone();
    } catch (err) {
      this.#failures++;
      onDone();
      await this.#rebuild(toSluiceError(err).message);
    }
  }

  async #rebuild(reason: string): Promise<void> {
    if (!this.#enabled) return;
    this.#changes++;
    try {
      await this.#run(['-f', '-'], counterTableScript(this.#devices, this.#clients));
      this.#rebuilds++;
      this.#log.warn('kernel counters: table made again; what passed since the last reading is not counted', {
        reason,
        clients: this.#clients.size,
      });
    } catch (err) {
      await this.#turnOff(
        'kernel counters off: the table cannot be made again; the meter lists the portal every tick',
        err,
      );
    }
  }

  async #turnOff(message: string, err: unknown): Promise<void> {
    this.#enabled = false;
    this.#clients.clear();
    try {
      await this.#run(['delete', 'table', 'netdev', COUNTER_TABLE], '');
    } catch {
      // none was made, or nft cannot run at all
    }
    this.#log.warn(message, { reason: toSluiceError(err).message });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
