/**
 * Watches the kernel for sluice's own nft tables being deleted behind its back (`nft flush ruleset`, a firewall
 * reload that replaces the whole ruleset) and says so at once, so the counters and the quota are made again within
 * moments instead of at the next change or tick: until then nothing is counted and nothing braked (9.4 MB passed a
 * 2 MiB grant in the lab with the quota back only when a later change failed).
 *
 * One long-running `nft monitor tables` (main.nft): it prints `add table <family> <name>` and `delete table <family>
 * <name>` as the kernel commits them, and blocks otherwise (no CPU while nothing changes). sluice's own scripts delete
 * and add a table in one transaction (a table made again); only a table whose last event is a delete once the events
 * pause (`quietMs`) is reported. A monitor that exits is started again after `restartMs`.
 *
 * A monitor hears only what the kernel commits after it has subscribed, and nothing says when that is: a table deleted
 * while it starts (or in the pause before a restart) would go unseen until the next change or tick. So each monitor
 * is probed until it hears the probe (an empty table added and deleted in one batch, every `probeMs`), and once it
 * does, the tables are listed once: a watched table missing then is reported as a deletion.
 */
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { toSluiceError } from '../errors.ts';
import { silentLogger, type Log } from '../log.ts';
import { nftRunner, type NftRun } from './nft-run.ts';

export interface TableWatchOptions {
  /** `main.nft` as argv. */
  command: readonly string[];
  /** The tables watched, as `<family> <name>` (e.g. `netdev sluice_count`). */
  tables: readonly string[];
  /** A watched table is gone (called once per deletion, after the events paused). */
  onGone: (table: string) => void;
  /** Whether sluice keeps this table now (a table it turned off and deleted itself is not reported): default all. */
  kept?: (table: string) => boolean;
  /**
   * Watched tables sluice never deletes and adds itself: a delete is reported even when something else adds the table
   * again before the events pause (fw4's include makes sluice's own gate again, its `paid` set empty).
   */
  remadeByOthers?: readonly string[];
  log?: Log;
  quietMs?: number;
  restartMs?: number;
  /** Between probes of a monitor that has not heard one yet. */
  probeMs?: number;
  /** One-shot nft calls (the probe, the listing): default `command` with a 5 s timeout. */
  run?: NftRun;
  spawn?: typeof nodeSpawn;
}

const EVENT = /^(add|delete) table (\S+ \S+)$/;
/** The probe's table: empty, added and deleted in one batch, so it is never in the ruleset. */
export const PROBE_TABLE = 'netdev sluice_watch_probe';
/** A monitor that hears none of this many probes is left to run unconfirmed (logged). */
const PROBES = 40;

export class TableWatch {
  readonly #options: TableWatchOptions;
  readonly #log: Log;
  /** Watched tables whose last event was a delete, waiting for the events to pause. */
  readonly #deleted = new Set<string>();
  #child: ChildProcess | undefined;
  #quiet: NodeJS.Timeout | undefined;
  #restart: NodeJS.Timeout | undefined;
  #probe: NodeJS.Timeout | undefined;
  #stopped = true;
  /** The monitor running now has heard a probe: it hears every later change. */
  #listening = false;
  /** …and the tables were listed after that. */
  #checked = false;
  /** Events heard per watched table (a listing is older than an event heard while it ran). */
  #events = 0;
  #waiters: Array<() => void> = [];
  readonly #run: NftRun;
  /** Deletions reported (stats). */
  gone = 0;

  constructor(options: TableWatchOptions) {
    this.#options = options;
    this.#log = options.log ?? silentLogger;
    this.#run = options.run ?? nftRunner(options.command, 5000);
  }

  /** Resolves once a monitor hears every change and the tables were checked after it did (tests, stats). */
  listening(): Promise<void> {
    return this.#checked ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#spawn();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#quiet);
    clearTimeout(this.#restart);
    clearTimeout(this.#probe);
    this.#child?.kill();
    this.#child = undefined;
  }

  /** One line of the monitor's output (exposed for tests of the parsing). */
  line(text: string): void {
    const m = EVENT.exec(text.trim());
    if (m === null) return;
    if (m[2] === PROBE_TABLE) {
      if (!this.#listening) void this.#heard();
      return;
    }
    if (!this.#options.tables.includes(m[2]!)) return;
    this.#events++;
    if (m[1] === 'delete') this.#deleted.add(m[2]!);
    else if (!(this.#options.remadeByOthers ?? []).includes(m[2]!)) this.#deleted.delete(m[2]!);
    this.#schedule();
  }

  #schedule(): void {
    clearTimeout(this.#quiet);
    if (this.#deleted.size > 0) this.#quiet = setTimeout(() => this.#report(), this.#options.quietMs ?? 50);
  }

  /** The monitor hears changes now: what was deleted before it did is found by listing the tables once. */
  async #heard(): Promise<void> {
    this.#listening = true;
    clearTimeout(this.#probe);
    try {
      const events = this.#events;
      const present = new Set(
        (await this.#run(['list', 'tables'], '')).split('\n').map((l) => l.replace(/^table\s+/, '').trim()),
      );
      // A change the monitor heard while the listing ran may be newer than it: then the events decide.
      if (this.#events === events) {
        for (const table of this.#options.tables) if (!present.has(table)) this.#deleted.add(table);
        this.#schedule();
      }
    } catch (err) {
      this.#log.warn('nft tables cannot be listed: a table deleted before the monitor started is found later', {
        reason: toSluiceError(err).message,
      });
    }
    this.#checked = true;
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  #report(): void {
    for (const table of this.#deleted) {
      if (this.#options.kept?.(table) === false) continue;
      this.gone++;
      this.#log.warn('nft table deleted behind sluice: making it again', { table });
      this.#options.onGone(table);
    }
    this.#deleted.clear();
  }

  #spawn(): void {
    const [cmd, ...args] = this.#options.command;
    let child: ChildProcess;
    try {
      child = (this.#options.spawn ?? nodeSpawn)(cmd!, [...args, 'monitor', 'tables'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch (err) {
      this.#log.warn('nft monitor cannot start: a deleted table is found at the next change or tick', {
        reason: (err as Error).message,
      });
      return;
    }
    this.#child = child;
    this.#listening = false;
    this.#checked = false;
    let buffer = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        if (this.#child === child) this.line(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
    });
    this.#probeUntilHeard(child, PROBES);
    child.on('error', () => undefined);
    child.on('close', () => {
      if (this.#child === child) this.#child = undefined;
      clearTimeout(this.#probe);
      if (this.#stopped) return;
      this.#restart = setTimeout(() => this.#spawn(), this.#options.restartMs ?? 1000);
      this.#restart.unref();
    });
  }

  /** An empty table added and deleted (one batch) until this monitor prints it: then it hears every later change. */
  #probeUntilHeard(child: ChildProcess, left: number): void {
    if (this.#stopped || this.#listening || this.#child !== child) return;
    if (left === 0) {
      this.#log.warn('nft monitor heard none of its probes: a deleted table may be found only at the next change');
      return;
    }
    const [family, name] = PROBE_TABLE.split(' ');
    void this.#run(['-f', '-'], `add table ${family} ${name}\ndelete table ${family} ${name}\n`).catch(() => undefined);
    this.#probe = setTimeout(() => this.#probeUntilHeard(child, left - 1), this.#options.probeMs ?? 250);
    this.#probe.unref();
  }
}
