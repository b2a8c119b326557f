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
 */
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { silentLogger, type Log } from '../log.ts';

export interface TableWatchOptions {
  /** `main.nft` as argv. */
  command: readonly string[];
  /** The tables watched, as `<family> <name>` (e.g. `netdev sluice_count`). */
  tables: readonly string[];
  /** A watched table is gone (called once per deletion, after the events paused). */
  onGone: (table: string) => void;
  log?: Log;
  quietMs?: number;
  restartMs?: number;
  spawn?: typeof nodeSpawn;
}

const EVENT = /^(add|delete) table (\S+ \S+)$/;

export class TableWatch {
  readonly #options: TableWatchOptions;
  readonly #log: Log;
  /** Watched tables whose last event was a delete, waiting for the events to pause. */
  readonly #deleted = new Set<string>();
  #child: ChildProcess | undefined;
  #quiet: NodeJS.Timeout | undefined;
  #restart: NodeJS.Timeout | undefined;
  #stopped = true;
  #buffer = '';
  /** Deletions reported (stats). */
  gone = 0;

  constructor(options: TableWatchOptions) {
    this.#options = options;
    this.#log = options.log ?? silentLogger;
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
    this.#child?.kill();
    this.#child = undefined;
  }

  /** One line of the monitor's output (exposed for tests of the parsing). */
  line(text: string): void {
    const m = EVENT.exec(text.trim());
    if (m === null || !this.#options.tables.includes(m[2]!)) return;
    if (m[1] === 'delete') this.#deleted.add(m[2]!);
    else this.#deleted.delete(m[2]!);
    clearTimeout(this.#quiet);
    if (this.#deleted.size > 0) this.#quiet = setTimeout(() => this.#report(), this.#options.quietMs ?? 50);
  }

  #report(): void {
    for (const table of this.#deleted) {
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
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        this.line(this.#buffer.slice(0, nl));
        this.#buffer = this.#buffer.slice(nl + 1);
      }
    });
    child.on('error', () => undefined);
    child.on('close', () => {
      if (this.#child === child) this.#child = undefined;
      if (this.#stopped) return;
      this.#restart = setTimeout(() => this.#spawn(), this.#options.restartMs ?? 1000);
      this.#restart.unref();
    });
  }
}
