/**
 * Runs the real daemon process (dist/sluice.mjs) against the embedded ubus broker and the ndsctl stand-in, and talks to
 * it over ubus like a portal or LuCI would.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UbusClient, UbusStatusError, type BlobmsgTable } from '../../src/ubus/index.ts';
import { UbusBroker } from '../../src/ubus/broker/index.ts';
import { PortalStateFile } from '../peers/ndsctl-state.ts';
import type { PortalModel } from '../../src/sim/index.ts';
import { listenNdsctlSocket, portalRequestHandler, type NdsctlSocketServer } from '../../src/sim/socket.ts';
import { quoteUci } from '../../src/config/index.ts';
import { LogTail } from '../helpers/log-tails.ts';
import { until } from '../helpers/until.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The harness's ubus calls' hang guard, not a speed check: a real-chain purchase (anvil, the facilitator, the daemon)
 * under CI's load waited 59 s of its file's 108 for a CPU, and a 20 s guard cut it.
 */
const CALL_GUARD_MS = 60_000;

export const BUNDLE = join(ROOT, 'dist', 'sluice.mjs');

/** Builds the bundle once per file when run on its own (npm test builds before running tests). */
export function ensureBuilt(): void {
  if (existsSync(BUNDLE) && process.env.SLUICE_TEST_REBUILD !== '1') return;
  const r = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('build failed');
}

export interface LabOptions {
  pollInterval?: number;
  checkpointInterval?: number;
  maxDevicesPerUser?: number;
  extraConfig?: string;
  latencyMs?: number;
  /**
   * Another copy of the bundle to run (e.g. the one unpacked from the .ipk); default SLUICE_TEST_BUNDLE when set (a
   * bundle built from one commit, while the shared dist/ follows everyone's edits), else dist/sluice.mjs.
   */
  bundle?: string;
  /**
   * The command to run instead of node on the bundle, as procd runs it (the package's /usr/bin/sluice, which execs node
   * with the package's flags); `daemon` and its arguments follow it.
   */
  command?: string;
  /**
   * Serve the portal over its control socket from this process (main.ndsctl_socket) instead of the ndsctl stand-in
   * command: the same portal state and answers, without a node process per call (each costs ~0.7 s of CPU, so a tick
   * every 0.3 s keeps a core busy). For tests about something other than the command path.
   */
  portalSocket?: boolean;
  /**
   * Runs the daemon under `ulimit -n` of this many descriptors (soft and hard: Node raises its soft limit to the hard
   * one), so a test can exhaust them with a few hundred sockets instead of thousands.
   */
  fdLimit?: number;
  /** main.router_id (default: the host's name), for tests that run several routers. */
  routerId?: string;
  /** More options of the main section (UCI `\toption name 'value'` lines). */
  mainExtra?: string;
}

export class DaemonLab {
  readonly dir: string;
  readonly socket: string;
  readonly configPath: string;
  readonly portal: PortalStateFile;
  broker!: UbusBroker;
  client!: UbusClient;
  daemon: ChildProcess | undefined;
  output = '';
  /** The daemon's last lines, printed by any wait of the test that times out (several routers: each one's). */
  private readonly tail: LogTail;
  /**
   * With `portalSocket`: called after each request the portal answered (its line, e.g. `json`, `deauth <token>`), on
   * the state it answered from, before that is written back: a test's device goes on passing traffic between two of
   * sluice's calls (its counters rise after a reading, before the next).
   */
  afterPortalCall: ((line: string, model: PortalModel) => void) | undefined;
  private portalServer: NdsctlSocketServer | undefined;

  private constructor(readonly options: LabOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'sluice-daemon-'));
    this.socket = join(this.dir, 'ubus.sock');
    this.configPath = join(this.dir, 'sluice.uci');
    this.tail = new LogTail(`daemon ${options.routerId ?? this.dir}`);
    mkdirSync(join(this.dir, 'portal'));
    this.portal = PortalStateFile.create({
      dir: join(this.dir, 'portal'),
      knobs: { latencyMs: options.latencyMs ?? 0 },
    });
  }

  static async create(options: LabOptions = {}): Promise<DaemonLab> {
    ensureBuilt();
    const lab = new DaemonLab(options);
    lab.writeConfig();
    // Each request under the stand-in's lock on the same state file, like a stand-in call (kept out of the stand-in's
    // own modules: every ndsctl call loads them).
    if (options.portalSocket) {
      lab.portalServer = await listenNdsctlSocket(lab.portalSocketPath, (line) =>
        lab.portal.update((model) => {
          const answer = portalRequestHandler(model)(line);
          lab.afterPortalCall?.(line, model);
          return answer;
        }),
      );
    }
    lab.broker = await UbusBroker.listen({ socketPath: lab.socket });
    lab.client = await UbusClient.connect({ socketPath: lab.socket, timeoutMs: CALL_GUARD_MS });
    return lab;
  }

  get portalSocketPath(): string {
    return join(this.dir, 'portal', 'ndsctl.sock');
  }

  /**
   * ndsctl_timeout is 60 s, not the router's 5 s: each stand-in call is a node process (~0.7 s of CPU), which on a
   * loaded test machine takes longer than 5 s, so every call would be killed and no tick would ever read the portal.
   * No test here is about the timeout itself (test/portal covers it).
   */
  writeConfig(extra = ''): void {
    const o = this.options;
    const ndsctl =
      this.portal.command.map((a) => `\tlist ndsctl ${quoteUci(a)}`).join('\n') +
      (o.portalSocket ? `\n\toption ndsctl_socket ${quoteUci(this.portalSocketPath)}` : '');
    writeFileSync(
      this.configPath,
      `
config sluice 'main'
\toption state_dir ${quoteUci(join(this.dir, 'state'))}
${ndsctl}
\toption portal 'opennds'
\toption poll_interval '${o.pollInterval ?? 0.5}'
\toption ndsctl_timeout '60'
\toption checkpoint_interval '${o.checkpointInterval ?? 5}'
\toption log_level 'debug'
${o.routerId === undefined ? '' : `\toption router_id ${quoteUci(o.routerId)}`}
${o.mainExtra ?? ''}

config pricing 'data'
\toption metric 'bytes'
\toption step_size '1048576'
\toption price_per_step '1000'
\toption min_steps '1'
\toption max_steps '1000'

config pricing 'time'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '500'
\toption min_steps '1'
\toption max_steps '1440'

config limits 'limits'
\toption max_devices_per_user '${o.maxDevicesPerUser ?? 0}'
${o.extraConfig ?? ''}
${extra}
`,
    );
  }

  async startDaemon(extraArgs: readonly string[] = []): Promise<void> {
    this.output = '';
    const argv = [
      ...(this.options.command !== undefined
        ? [this.options.command]
        : [process.execPath, this.options.bundle ?? (process.env.SLUICE_TEST_BUNDLE || BUNDLE)]),
      'daemon',
      '--config',
      this.configPath,
      '--ubus-socket',
      this.socket,
      ...extraArgs,
    ];
    const limit = this.options.fdLimit;
    // sh sets the limit and execs node in its place: the pid (and so stopDaemon's signals) is the daemon's own.
    const [file, ...args] =
      limit === undefined ? argv : ['/bin/sh', '-c', `ulimit -n ${Math.floor(limit)} && exec "$0" "$@"`, ...argv];
    const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.daemon = child;
    const heard = (d: Buffer): void => {
      this.output += d;
      this.tail.push(String(d));
    };
    child.stdout!.on('data', heard);
    child.stderr!.on('data', heard);
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `daemon exited (code ${code}, signal ${signal})`;
    });
    await this.waitFor(
      () => {
        if (exited !== undefined) throw new Error(`${exited}\n--- daemon output ---\n${this.output}`);
        return this.output.includes('sluice running');
      },
      60_000,
      'daemon start',
    );
  }

  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.daemon;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(signal);
    const code = await exited;
    this.daemon = undefined;
    return code;
  }

  /**
   * Drops the test's ubus connection and opens a new one: its calls still waiting on a daemon that was killed fail at
   * once (ERR_UBUS_CLOSED) instead of each waiting out the 20 s request timeout, as a caller of ubusd would (ubusd
   * does not answer a request whose object's owner went away).
   */
  async reconnectClient(): Promise<void> {
    this.client.destroy();
    this.client = await UbusClient.connect({ socketPath: this.socket, timeoutMs: CALL_GUARD_MS });
  }

  call(method: string, args: BlobmsgTable = {}): Promise<BlobmsgTable> {
    return this.client.call('sluice', method, args).then((r) => r ?? {});
  }

  /** Calls and returns the status and error data of a failing call (or status 0 and the data). */
  async callStatus(
    method: string,
    args: BlobmsgTable = {},
  ): Promise<{ status: number; data: BlobmsgTable | undefined }> {
    try {
      return { status: 0, data: await this.call(method, args) };
    } catch (err) {
      if (err instanceof UbusStatusError) return { status: err.status, data: err.replies[0] };
      throw err;
    }
  }

  async session(mac: string): Promise<Record<string, unknown>> {
    return (await this.call('session', { mac })).session as Record<string, unknown>;
  }

  clientState(mac: string): string | undefined {
    const { model } = this.portal.read();
    return model.get(mac)?.state;
  }

  waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    return until(cond, timeoutMs, () => `waiting for ${what}\n--- daemon output ---\n${this.output}`, 50);
  }

  async close(): Promise<void> {
    this.tail.close();
    await this.stopDaemon('SIGKILL').catch(() => undefined);
    this.client?.destroy();
    await this.broker?.close().catch(() => undefined);
    await this.portalServer?.close();
    this.portal.cleanup();
    // A file written into portal/ while it was being removed failed the teardown once (ENOTEMPTY; most likely an ndsctl
    // stand-in the SIGKILLed daemon had spawned, not traced): rmSync retries on that.
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}
