import { SluiceError, type ErrorCode } from '../errors.ts';
import { silentLogger, type Log } from '../log.ts';
import { systemTimers, type Timers } from '../time.ts';
import { NDSCTL_EXIT, runCommand, type KillReason, type SpawnFn } from './command.ts';
import { socketCall } from './socket-transport.ts';

/**
 * Runs ndsctl one call at a time. ndsctl takes a lock: a second ndsctl running concurrently exits 4 ("busy"),
 * so every call in the process goes through ONE FIFO queue, each attempt is bounded in time (the child is killed,
 * with its process group, and reaped before the next call starts), and "busy" (4, which the portal itself can cause,
 * e.g. from its BinAuth script) is retried with a short growing backoff. Only stdout is read: Debian's ndsctl leaks
 * pgrep warnings on stderr. Output is collected in chunks without a fixed buffer limit (an `ndsctl json` at 100k
 * clients is ~100 MB), only a sanity cap.
 */

export interface NdsctlRunnerOptions {
  /** argv prefix, e.g. ['/usr/bin/ndsctl'] or ['ip', 'netns', 'exec', 'router', 'ndsctl']. */
  command: readonly string[];
  /** Per attempt. Default 5000 ms. */
  timeoutMs?: number;
  /** Attempts per call while ndsctl answers "busy" (exit 4). Default 6. */
  maxAttempts?: number;
  /** Backoff after the n-th busy answer is n × this. Default 100 ms (one ndsctl call takes ~0.1 s). */
  busyBackoffMs?: number;
  /** Sanity cap on stdout. Default 512 MiB (V8 strings top out near there). */
  maxOutputBytes?: number;
  spawn?: SpawnFn;
  timers?: Timers;
  env?: NodeJS.ProcessEnv;
  log?: Log;
  /**
   * The portal's control socket, asked before each call: when it returns a path, the call goes over that socket
   * (socket-transport.ts) instead of spawning ndsctl; undefined falls back to the command.
   */
  socketPath?: () => string | undefined;
}

/**
 * Which queued call goes next: a deauth of an exhausted or terminated session first, then the meter's final reading
 * of one client about to run out ('read': it decides a cut, but a gate already due to close goes before it), the
 * tick's snapshot, then auths and lookups, so a burst of purchases never delays metering or a cut. Last, 'lookup':
 * reads on behalf of LAN requests (the HTTP endpoint's IP → MAC list), which anyone on the LAN can cause, so they
 * never go ahead of a gate command or a meter read. FIFO within a class.
 */
export type NdsctlPriority = 'deauth' | 'read' | 'snapshot' | 'auth' | 'lookup';
const PRIORITY_RANK: Record<NdsctlPriority, number> = { deauth: 0, read: 1, snapshot: 2, auth: 3, lookup: 4 };
/** Not aged (see runExclusive): a lookup jumped by a gate command stays behind the gate commands queued after it. */
const UNAGED_RANK = PRIORITY_RANK.lookup;

export interface NdsctlResult {
  stdout: string;
  /** Tail of stderr, for diagnostics only. */
  stderr: string;
  /** 1 unless "busy" answers were retried. */
  attempts: number;
}

/** Runs ndsctl with these arguments without queueing: valid only inside the runExclusive callback that got it. */
export type NdsctlExec = (args: readonly string[]) => Promise<NdsctlResult>;

type RunnerState = 'ready' | 'draining' | 'closed';

interface Job {
  /** Lowered when a more urgent call overtakes this one (see runExclusive). */
  rank: number;
  fn: (exec: NdsctlExec) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class NdsctlRunner {
  readonly #command: readonly string[];
  readonly #timeoutMs: number;
  readonly #maxAttempts: number;
  readonly #busyBackoffMs: number;
  readonly #maxOutputBytes: number;
  readonly #spawn: SpawnFn | undefined;
  readonly #timers: Timers;
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #log: Log;
  readonly #socketPath: (() => string | undefined) | undefined;
  readonly #queue: Job[] = [];
  #busy = false;
  #state: RunnerState = 'ready';
  #inFlight: { kill: () => void } | null = null;
  #drained: Array<() => void> = [];

  constructor(opts: NdsctlRunnerOptions) {
    if (!Array.isArray(opts.command) || opts.command.length === 0 || !opts.command.every((s) => typeof s === 'string' && s.length > 0)) {
      throw new SluiceError('ERR_INVALID_ARGUMENT', 'ndsctl command must be a non-empty list of non-empty strings');
    }
    this.#command = [...opts.command];
    this.#timeoutMs = positive(opts.timeoutMs, 5000, 'timeoutMs');
    this.#maxAttempts = Math.floor(positive(opts.maxAttempts, 6, 'maxAttempts'));
    this.#busyBackoffMs = opts.busyBackoffMs === undefined ? 100 : Math.max(0, opts.busyBackoffMs);
    this.#maxOutputBytes = positive(opts.maxOutputBytes, 512 * 1024 * 1024, 'maxOutputBytes');
    this.#spawn = opts.spawn;
    this.#timers = opts.timers ?? systemTimers;
    this.#env = opts.env;
    this.#log = opts.log ?? silentLogger;
    this.#socketPath = opts.socketPath;
  }

  /** Calls waiting (not counting the one in flight). */
  get queued(): number {
    return this.#queue.length;
  }

  get state(): RunnerState {
    return this.#state;
  }

  /** Queue one ndsctl call. Rejects with a SluiceError whose code tells what happened (see NdsctlRunner docs). */
  run(args: readonly string[], priority: NdsctlPriority = 'auth'): Promise<NdsctlResult> {
    return this.runExclusive((exec) => exec(args), priority);
  }

  /**
   * Holds the queue while `fn` runs: no other ndsctl call starts until it settles. `fn` may run ndsctl through
   * the `exec` it receives, or spawn ndsctl by other means (the usage engine's worker does).
   */
  runExclusive<T>(fn: (exec: NdsctlExec) => Promise<T>, priority: NdsctlPriority = 'auth'): Promise<T> {
    if (this.#state !== 'ready') return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      const rank = PRIORITY_RANK[priority] ?? PRIORITY_RANK.auth;
      const job: Job = { rank, fn, resolve: resolve as (value: unknown) => void, reject };
      const at = this.#queue.findIndex((queued) => queued.rank > rank);
      if (at < 0) this.#queue.push(job);
      else {
        this.#queue.splice(at, 0, job);
        // Aging: a call is overtaken at most once per class. What was jumped now ranks like the jumper, so
        // back-to-back ticks (adaptive precision polls often) cannot starve a purchase's auth. Lookups are not aged:
        // their callers coalesce them (one queued at a time), and what they wait for is the work that must not wait.
        for (let i = at + 1; i < this.#queue.length; i++) {
          const queued = this.#queue[i]!;
          if (queued.rank !== UNAGED_RANK) queued.rank = Math.min(queued.rank, rank);
        }
      }
      this.#pump();
    });
  }

  /** Lets queued calls finish, refuses new ones. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.#state === 'ready') this.#state = 'draining';
    if (!this.#busy && this.#queue.length === 0) {
      this.#state = 'closed';
      return;
    }
    await new Promise<void>((resolve) => this.#drained.push(resolve));
  }

  /** Kills the running ndsctl (if any), rejects queued calls. Idempotent. */
  async destroy(): Promise<void> {
    this.#state = 'closed';
    for (const job of this.#queue.splice(0)) job.reject(closedError());
    this.#inFlight?.kill();
    if (this.#busy) await new Promise<void>((resolve) => this.#drained.push(resolve));
  }

  #pump(): void {
    if (this.#busy) return;
    const job = this.#queue.shift();
    if (job === undefined) {
      if (this.#state === 'draining') this.#state = 'closed';
      for (const resolve of this.#drained.splice(0)) resolve();
      return;
    }
    this.#busy = true;
    let held = true;
    const exec: NdsctlExec = (args) => {
      if (!held) return Promise.reject(new SluiceError('ERR_INTERNAL', 'ndsctl exec used after its exclusive section ended'));
      if (this.#state === 'closed') return Promise.reject(closedError());
      return this.#execWithRetry(args);
    };
    let settled: Promise<unknown>;
    try {
      settled = Promise.resolve(job.fn(exec));
    } catch (err) {
      settled = Promise.reject(err);
    }
    // The section ends before the caller hears the result, so an exec kept past it is refused.
    const release = (): void => {
      held = false;
      this.#busy = false;
      this.#pump();
    };
    settled.then(
      (value) => {
        release();
        job.resolve(value);
      },
      (err: unknown) => {
        release();
        job.reject(err);
      },
    );
  }

  async #execWithRetry(args: readonly string[]): Promise<NdsctlResult> {
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
      throw new SluiceError('ERR_INVALID_ARGUMENT', 'ndsctl arguments must be strings');
    }
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#execOnce(args);
      if (outcome.code === NDSCTL_EXIT.busy && outcome.signal === null) {
        if (attempt >= this.#maxAttempts) {
          throw new SluiceError('ERR_NDSCTL_BUSY', `ndsctl ${args[0] ?? ''} still busy after ${attempt} attempts`, {
            details: { args: [...args], attempts: attempt },
          });
        }
        this.#log.debug('ndsctl busy, retrying', { args: JSON.stringify(args), attempt });
        await this.#sleep(this.#busyBackoffMs * attempt);
        if (this.#state === 'closed') throw closedError();
        continue;
      }
      return mapOutcome(args, outcome, attempt);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.#timers.setTimeout(() => {
        this.#inFlight = null;
        resolve();
      }, ms);
      this.#inFlight = {
        kill: () => {
          this.#timers.clearTimeout(handle);
          this.#inFlight = null;
          resolve();
        },
      };
    });
  }

  async #execOnce(args: readonly string[]): Promise<RawOutcome> {
    const socket = this.#socketPath?.();
    if (socket !== undefined) return this.#execSocket(socket, args);
    const chunks: Buffer[] = [];
    let outBytes = 0;
    const run = runCommand({
      argv: [...this.#command, ...args],
      timeoutMs: this.#timeoutMs,
      ...(this.#spawn === undefined ? {} : { spawn: this.#spawn }),
      timers: this.#timers,
      ...(this.#env === undefined ? {} : { env: this.#env }),
      onStdout: (chunk) => {
        outBytes += chunk.length;
        if (outBytes > this.#maxOutputBytes) return 'output exceeds the size cap';
        chunks.push(chunk);
        return undefined;
      },
    });
    this.#inFlight = { kill: run.kill };
    const outcome = await run.outcome;
    this.#inFlight = null;
    if (outcome.kind === 'spawn-failed') throw spawnError(this.#command[0]!, outcome.error);
    if (outcome.kind === 'killed') throw killedError(outcome.why, args, this.#timeoutMs);
    return { code: outcome.code, signal: outcome.signal, stdout: Buffer.concat(chunks, outBytes).toString('utf8'), stderr: outcome.stderr };
  }

  #execSocket(path: string, args: readonly string[]): Promise<RawOutcome> {
    return new Promise<RawOutcome>((resolve, reject) => {
      const call = socketCall(path, args, this.#maxOutputBytes);
      const timer = this.#timers.setTimeout(() => call.abort(killedError('timeout', args, this.#timeoutMs)), this.#timeoutMs);
      this.#inFlight = { kill: () => call.abort(closedError()) };
      call.promise.then(
        (o) => {
          this.#timers.clearTimeout(timer);
          this.#inFlight = null;
          resolve({ code: o.code, signal: null, stdout: o.stdout, stderr: o.stderr });
        },
        (err: unknown) => {
          this.#timers.clearTimeout(timer);
          this.#inFlight = null;
          reject(err instanceof RangeError ? killedError('output', args, this.#timeoutMs) : err);
        },
      );
    });
  }
}

interface RawOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function mapOutcome(args: readonly string[], o: RawOutcome, attempts: number): NdsctlResult {
  if (o.code === NDSCTL_EXIT.ok) return { stdout: o.stdout, stderr: o.stderr, attempts };
  const what = `ndsctl ${args.join(' ')}`.slice(0, 200);
  const said = firstLine(o.stdout) || firstLine(o.stderr);
  const details = { args: [...args], exitCode: o.code, signal: o.signal, stdout: o.stdout.slice(0, 200), stderr: o.stderr.slice(-500) };
  if (o.signal !== null) return fail('ERR_NDSCTL_FAILED', `${what}: killed by ${o.signal}`);
  switch (o.code) {
    case NDSCTL_EXIT.no:
      return fail('ERR_NDSCTL_REJECTED', `${what}: ${said || 'refused (exit 1)'}`);
    case NDSCTL_EXIT.abnormalReply:
      return fail('ERR_NDSCTL_FAILED', `${what}: abnormal reply from the portal (exit 2)${said ? `: ${said}` : ''}`);
    case NDSCTL_EXIT.cannotConnect:
      return fail('ERR_PORTAL_DOWN', `${what}: cannot reach the portal (exit 3)${said ? `: ${said}` : ''}`);
    case 126:
    case 127:
      // Shell conventions, when the command is a wrapper script whose ndsctl is missing or not executable.
      return fail('ERR_NDSCTL_MISSING', `${what}: command not found or not executable (exit ${o.code})${said ? `: ${said}` : ''}`);
    default:
      return fail('ERR_NDSCTL_FAILED', `${what}: exit ${o.code}${said ? `: ${said}` : ''}`);
  }
  function fail(code: ErrorCode, message: string): never {
    throw new SluiceError(code, message, { details });
  }
}

function firstLine(text: string): string {
  return (text.split('\n').find((line) => line.trim() !== '') ?? '').trim().slice(0, 200);
}

function killedError(why: KillReason, args: readonly string[], timeoutMs: number): SluiceError {
  const what = `ndsctl ${args.join(' ')}`.slice(0, 200);
  if (why === 'timeout') return new SluiceError('ERR_NDSCTL_TIMEOUT', `${what}: no answer within ${timeoutMs} ms, killed`, { details: { args: [...args], timeoutMs } });
  if (why === 'output') return new SluiceError('ERR_NDSCTL_FAILED', `${what}: output exceeds the size cap, killed`, { details: { args: [...args] } });
  return closedError();
}

function spawnError(file: string, err: unknown): SluiceError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR') {
    return new SluiceError('ERR_NDSCTL_MISSING', `cannot run ${file}: ${code}`, { cause: err, details: { file, errno: code } });
  }
  return new SluiceError('ERR_NDSCTL_FAILED', `cannot run ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function closedError(): SluiceError {
  return new SluiceError('ERR_VALVE_CLOSED', 'the ndsctl runner is shut down');
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SluiceError('ERR_INVALID_ARGUMENT', `${name} must be a positive number`);
  }
  return value;
}
