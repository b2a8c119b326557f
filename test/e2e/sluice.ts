/**
 * Runs the built sluice (dist/sluice.mjs) against a lab: the embedded ubus broker and the daemon, both inside the
 * lab's router network namespace (so `lab.sh down` also catches them if a test dies), and calls it over ubus with
 * sluice's own `ubus` CLI, as a portal or an admin script would.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { E2E_DIR, ROUTER_LAN_IP, run, sleep, waitFor } from './lab.ts';
import type { Lab } from './lab.ts';
import { onProcessExit } from './exit-cleanup.ts';
import { UbusClient } from '../../src/ubus/client.ts';
import { UbusStatusError } from '../../src/ubus/errors.ts';
import type { BlobmsgTable } from '../../src/ubus/index.ts';

/** The bundle under test: dist/ by default; SLUICE_E2E_BUNDLE points at a copy (a bench comparing two builds). */
export const SLUICE = process.env['SLUICE_E2E_BUNDLE'] ?? join(E2E_DIR, '..', '..', 'dist', 'sluice.mjs');
/**
 * A real ubusd (openwrt/ubus built for this host, e.g. the procd lab's; the variable the ubus client tests take too) to
 * run as the lab's bus instead of sluice's embedded broker: a router's bus is that C daemon, so a bench of call
 * latencies measures what a router pays.
 */
const REAL_UBUSD = process.env['SLUICE_REAL_UBUSD'];
/** Node flags for the daemon alone (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`: where a bench's CPU goes). */
const DAEMON_NODE_ARGS = (process.env['SLUICE_E2E_DAEMON_NODE_ARGS'] ?? '').split(' ').filter((w) => w !== '');

/** Why the daemon cannot be driven yet, or null when it can. */
export function daemonUnavailableReason(): string | null {
  if (!existsSync(SLUICE)) return 'dist/sluice.mjs is not built (npm run build)';
  for (const cmd of ['ubusd', 'daemon', 'ubus']) {
    // A real command either runs (and is killed by the timeout) or prints its own usage; the placeholder CLI
    // answers every unknown command with the top-level usage and exit 2.
    const r = spawnSync(process.execPath, [SLUICE, cmd, '--help'], { encoding: 'utf8', timeout: 5000 });
    if (r.status === 2 && /usage: sluice <command>/.test(`${r.stdout}${r.stderr}`)) {
      return `dist/sluice.mjs has no \`${cmd}\` command yet`;
    }
  }
  return null;
}

export interface SessionView {
  id: string;
  mac: string;
  state: string;
  metric: string;
  allotment: number;
  used: number;
  remaining: number;
  raw: Record<string, unknown>;
}

export interface SluiceOptions {
  pollInterval?: number;
  checkpointInterval?: number;
  /**
   * How sluice reaches the portal: 'socket' (default; its control socket, the production path) or 'command' (the
   * ndsctl wrapper). SLUICE_E2E_PORTAL_VIA overrides it.
   */
  via?: 'socket' | 'command';
  /**
   * `main.kernel_quota` (default on, as the package ships it): sluice's nft quota per data session in the router's
   * namespace, where the daemon runs. SLUICE_E2E_KERNEL_QUOTA=0|1 overrides it.
   */
  kernelQuota?: boolean;
  /** The plans' `asset` (a token address): they are then for sale by x402 too, priced in USDC (6 decimals). */
  planAsset?: string;
  /** More `main` options, as UCI lines (e.g. `\toption meter 'portal'`). */
  mainOptions?: string[];
  /** UCI sections appended to the config (x402, http, …). */
  extraConfig?: string;
}

const asset = (address: string | undefined): string[] =>
  address ? [`\toption asset '${address}'`, `\toption currency 'USDC'`] : [];

export class Sluice {
  readonly dir: string;
  private client: Promise<UbusClient> | undefined;
  readonly socket: string;
  readonly config: string;
  private broker: ChildProcess | null = null;
  private daemon: ChildProcess | null = null;
  private readonly lab: Lab;

  /** how this daemon reaches the portal */
  readonly via: 'socket' | 'command';
  /** whether the daemon runs with main.kernel_quota */
  readonly kernelQuota: boolean;

  private constructor(lab: Lab, opts: SluiceOptions) {
    this.lab = lab;
    const env = process.env['SLUICE_E2E_PORTAL_VIA'];
    const via = (this.via = env === 'command' || env === 'socket' ? env : (opts.via ?? 'socket'));
    const kq = process.env['SLUICE_E2E_KERNEL_QUOTA'];
    const kernelQuota = (this.kernelQuota = kq === '0' ? false : kq === '1' ? true : (opts.kernelQuota ?? true));
    this.dir = join(lab.dir, 'sluice');
    mkdirSync(join(this.dir, 'state'), { recursive: true });
    // The lab's bus when openNDS's scripts have a `ubus` on it (lab.sh --ubus), else one of the daemon's own.
    this.socket = lab.ubusSocket ?? join(this.dir, 'ubus.sock');
    this.config = join(this.dir, 'sluice.conf');
    const socketOption =
      lab.portal === 'sluice' ? join(this.dir, 'gate.sock') : via === 'socket' ? lab.portalSocketPath : 'off';
    writeFileSync(
      this.config,
      [
        `config sluice 'main'`,
        `\toption state_dir '${join(this.dir, 'state')}'`,
        `\tlist ndsctl '${lab.ndsctlPath}'`,
        `\toption portal '${lab.portal}'`,
        // sluice's own gate answers on a socket of its own, in this lab's directory (labs run side by side).
        `\toption ndsctl_socket '${socketOption}'`,
        `\toption poll_interval '${opts.pollInterval ?? 1}'`,
        `\toption checkpoint_interval '${opts.checkpointInterval ?? 5}'`,
        `\toption kernel_quota '${kernelQuota ? 1 : 0}'`,
        ...(opts.mainOptions ?? []),
        ``,
        `config pricing 'data'`,
        `\toption metric 'bytes'`,
        `\toption step_size '1048576'`,
        `\toption price_per_step '1000'`,
        `\toption decimals '6'`,
        `\toption min_steps '1'`,
        `\toption max_steps '1000'`,
        ...asset(opts.planAsset),
        ``,
        `config pricing 'time'`,
        `\toption metric 'seconds'`,
        `\toption step_size '60'`,
        `\toption price_per_step '1000'`,
        `\toption min_steps '1'`,
        `\toption max_steps '1440'`,
        ...asset(opts.planAsset),
        ``,
        opts.extraConfig ?? '',
        // sluice as the gate sends unpaid HTTP to its LAN endpoint: on the lab router's LAN address unless the file
        // says where (the package's default, 192.168.1.1, is not this router's).
        ...(lab.portal === 'sluice' && !/^config http /m.test(opts.extraConfig ?? '')
          ? [`config http 'http'`, `\toption listen '${ROUTER_LAN_IP}:2122'`, ``]
          : []),
      ].join('\n'),
    );
  }

  static async start(lab: Lab, opts: SluiceOptions = {}): Promise<Sluice> {
    const s = new Sluice(lab, opts);
    s.broker =
      REAL_UBUSD === undefined
        ? s.spawnInRouter(['ubusd', '-s', s.socket], 'ubusd.log')
        : s.spawnInRouter([REAL_UBUSD, '-s', s.socket], 'ubusd.log', [], false);
    await waitFor('the ubus broker socket', 10_000, async () => (existsSync(s.socket) ? true : undefined), 100);
    await s.startDaemon();
    return s;
  }

  /** `args` run by sluice's bundle, or as a command of their own (`viaSluice` false). */
  private spawnInRouter(args: string[], log: string, nodeArgs: readonly string[] = [], viaSluice = true): ChildProcess {
    const fd = openSync(join(this.dir, log), 'a');
    const command = viaSluice ? [process.execPath, ...nodeArgs, SLUICE, ...args] : args;
    const child = spawn('ip', ['netns', 'exec', this.lab.rtNs, ...command], { stdio: ['ignore', fd, fd] });
    const forget = onProcessExit(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    child.once('exit', forget);
    return child;
  }

  async startDaemon(): Promise<void> {
    this.daemon = this.spawnInRouter(
      ['daemon', '--config', this.config, '--ubus-socket', this.socket],
      'daemon.log',
      DAEMON_NODE_ARGS,
    );
    const daemon = this.daemon;
    await waitFor(
      `the sluice object on ubus (log: ${join(this.dir, 'daemon.log')})`,
      20_000,
      async () => {
        if (daemon.exitCode !== null)
          throw new Error(`sluice daemon exited with ${daemon.exitCode}:\n${this.logTail()}`);
        // A daemon that reported a fatal start error but did not exit would otherwise cost the whole timeout.
        if (/cannot start/.test(this.logTail()))
          throw new Error(`sluice daemon failed to start (still running):\n${this.logTail()}`);
        const r = await this.ubus(['list', 'sluice']);
        return r.code === 0 && r.stdout.includes('sluice') ? true : undefined;
      },
      200,
    );
  }

  /** The daemon's pid (`ip netns exec` execs node: the daemon itself), null when not running. */
  get daemonPid(): number | null {
    const d = this.daemon;
    return d && d.exitCode === null && d.signalCode === null ? (d.pid ?? null) : null;
  }

  /** SIGKILL: no clean stop, no final checkpoint. */
  async kill9(): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null) return;
    const exited = new Promise((r) => d.once('exit', r));
    d.kill('SIGKILL');
    await exited;
  }

  /** Clean stop (SIGTERM) of the daemon alone: the broker stays for a later startDaemon(). */
  async stopDaemon(): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null || d.signalCode !== null) return;
    const exited = new Promise((r) => d.once('exit', r));
    d.kill('SIGTERM');
    const t = setTimeout(() => d.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  /** Clean stop (SIGTERM), then the broker. */
  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.then((c) => c.close()).catch(() => undefined);
    for (const child of [this.daemon, this.broker]) {
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    // SLUICE_E2E_LOG_DIR: keep the daemon's log (the lab's directory goes with the lab) to read its cut decisions.
    const keep = process.env['SLUICE_E2E_LOG_DIR'];
    if (keep && existsSync(join(this.dir, 'daemon.log'))) {
      mkdirSync(keep, { recursive: true });
      copyFileSync(join(this.dir, 'daemon.log'), join(keep, `daemon-${process.pid}-${Date.now()}.log`));
    }
  }

  ubus(args: string[]): ReturnType<typeof run> {
    return run(process.execPath, [SLUICE, 'ubus', '-s', this.socket, '-t', '10', ...args], 20_000);
  }

  /** `ubus call sluice <method> <args>`: the parsed reply, or an error carrying the exit code and output. */
  async call(method: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = await this.ubus(['call', 'sluice', method, JSON.stringify(args)]);
    if (r.code !== 0) {
      throw Object.assign(
        new Error(`ubus call sluice ${method} ${JSON.stringify(args)} → exit ${r.code}: ${r.stdout}${r.stderr}`),
        {
          exit: r.code,
          stdout: r.stdout,
        },
      );
    }
    return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
  }

  /**
   * `ubus call sluice session` over one in-process connection: the scenarios poll it every 250 ms, and a `sluice ubus`
   * process per poll (~100 ms of CPU each) took a core from the portal and sluice under test on a 2-core machine.
   */
  async session(mac: string): Promise<SessionView | null> {
    let reply: Record<string, unknown>;
    try {
      reply = await this.#callOwn('session', { mac });
    } catch (err) {
      if (err instanceof UbusStatusError && err.status === 4) return null; // NOT_FOUND
      throw err;
    }
    const s = reply.session as Record<string, unknown> | undefined;
    if (!s) return null;
    const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? NaN));
    return {
      id: String(s.id),
      mac: String(s.mac),
      state: String(s.state),
      metric: String(s.metric),
      allotment: num(s.allotment),
      used: num(s.used),
      remaining: num(s.remaining),
      raw: s,
    };
  }

  /** The meter's completed ticks (`stats` → meter.ticks_ok), over the same in-process connection as `session`. */
  async ticksDone(): Promise<number> {
    const reply = await this.#callOwn('stats', {});
    return Number((reply.meter as { ticks_ok?: unknown } | undefined)?.ticks_ok ?? NaN);
  }

  /**
   * `ubus call sluice <method>` over this process's own connection, as call() answers (a NOT_FOUND throws): the
   * benches' grants and polls, where a `sluice ubus` process per call (~100 ms of CPU) is the bench's cost, not the
   * router's.
   */
  callInProcess(method: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#callOwn(method, args as BlobmsgTable);
  }

  /**
   * `ubus call sluice <method>` over the in-process connection; a failed call drops it (a restarted daemon or broker:
   * connect again on the next call).
   */
  async #callOwn(method: string, args: BlobmsgTable): Promise<Record<string, unknown>> {
    try {
      this.client ??= UbusClient.connect({ socketPath: this.socket, timeoutMs: 10_000 });
      return (await (await this.client).call('sluice', method, args)) ?? {};
    } catch (err) {
      if (err instanceof UbusStatusError && err.status === 4) throw err; // NOT_FOUND: an answer, the connection is fine
      const stale = this.client;
      this.client = undefined;
      void stale?.then((c) => c.close()).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Waits until the meter has completed `ticks` more ticks than now, so the last of them was dispatched after this
   * call: what passed the gate before it is in `used`. A fixed sleep of that many polls fell short on a loaded machine,
   * where ticks come late (data.test scenario 4 read a client 7.7% short at load 8); idle it returns sooner.
   */
  async meterCaughtUp(ticks = 2, timeoutMs = 30_000): Promise<void> {
    const from = await this.ticksDone();
    if (!Number.isFinite(from)) throw new Error('stats has no meter.ticks_ok');
    await waitFor(
      `${ticks} meter ticks after now`,
      timeoutMs,
      async () => ((await this.ticksDone()) >= from + ticks ? true : undefined),
      250,
    );
  }

  /** Polls the session until `pred` holds. */
  async waitSession(
    mac: string,
    what: string,
    timeoutMs: number,
    pred: (s: SessionView) => boolean,
    everyMs = 250,
  ): Promise<SessionView> {
    return waitFor(
      what,
      timeoutMs,
      async () => {
        const s = await this.session(mac);
        return s && pred(s) ? s : undefined;
      },
      everyMs,
    );
  }

  logTail(lines = 60): string {
    try {
      return readFileSync(join(this.dir, 'daemon.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no daemon.log)';
    }
  }
}

export { sleep };
