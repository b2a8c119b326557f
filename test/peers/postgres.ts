/**
 * A real PostgreSQL 15 (Debian's postgresql-15) for the fleet's tests: a private cluster in a temp dir, TCP on a free
 * port of 127.0.0.1, trust authentication for the user `sluice`. initdb refuses root, so as root the cluster belongs
 * to the `postgres` user and its programs run through runuser. stop()/start() keep the port and the data.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/net.ts';
import { tailOf } from '../helpers/log-tails.ts';

const BIN = '/usr/lib/postgresql/15/bin';

export function postgresInstalled(): boolean {
  return existsSync(join(BIN, 'initdb')) && existsSync(join(BIN, 'pg_ctl'));
}

function owner(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('running as root needs the postgres user (Debian postgresql-15 makes it)');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

export class Postgres {
  readonly dir: string;
  readonly data: string;
  readonly log: string;
  port = 0;
  private readonly runAs = owner();
  /** Stops printing its log when a wait times out (tailOf). */
  private untail = (): void => undefined;

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
    // The postgres user must reach its data dir through this one.
    chmodSync(this.dir, 0o755);
    this.data = join(this.dir, 'data');
    this.log = join(this.dir, 'log');
  }

  /** postgres://sluice@127.0.0.1:PORT/<database> */
  url(database = 'postgres'): string {
    return `postgres://sluice@127.0.0.1:${this.port}/${database}`;
  }

  static async create(): Promise<Postgres> {
    if (!postgresInstalled()) throw new Error('PostgreSQL 15 is not installed: apt-get install postgresql-15');
    const pg = new Postgres();
    mkdirSync(pg.data, { mode: 0o700 });
    if (pg.runAs) {
      chownSync(pg.data, pg.runAs.uid, pg.runAs.gid);
      chownSync(pg.dir, pg.runAs.uid, pg.runAs.gid);
    }
    pg.run('initdb', ['-D', pg.data, '-A', 'trust', '-U', 'sluice', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
    pg.port = await freePort();
    await pg.start();
    pg.untail = tailOf(`postgresql :${pg.port}`, () => pg.output());
    return pg;
  }

  private run(program: string, args: string[]): string {
    const argv = this.runAs
      ? ['runuser', '-u', 'postgres', '--', join(BIN, program), ...args]
      : [join(BIN, program), ...args];
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: this.dir });
    if (r.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Starts the server and waits until it accepts connections. */
  async start(): Promise<void> {
    // A lock waited on past a second, and a statement slower than one, are logged: a wait that times out prints the
    // log's last lines (log-tails.ts), so a stall says whether the database held it.
    const logged = `-c log_lock_waits=on -c log_min_duration_statement=1000`;
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=on ${logged}`;
    this.run('pg_ctl', ['-D', this.data, '-o', opts, '-l', this.log, '-w', '-t', '60', 'start']);
  }

  /** Stops it: 'fast' (clients disconnected, a clean shutdown) or 'immediate' (like a crash: recovery at start). */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    this.run('pg_ctl', ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  output(): string {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8') : '';
  }

  async close(): Promise<void> {
    this.untail();
    try {
      await this.stop('immediate');
    } catch {
      // Already stopped.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
