import { SluiceError } from '../errors.ts';
import { silentLogger, type Log } from '../log.ts';
import { systemTimers, type Timers } from '../time.ts';
import { NDSCTL_EXIT, runCommand, type SpawnFn } from './command.ts';
import { rankOf, takeNext, type NdsctlPriority, type QueuedCall } from './call-order.ts';
import {
  closedError,
  killedError,
  mapOutcome,
  spawnError,
  type NdsctlResult,
  type RawOutcome,
} from './ndsctl-outcome.ts';
import { socketCall, type SocketCall } from './socket-transport.ts';
import { DEFAULT_NUDGE, type NudgePolicy } from './accept-nudge.ts';
import { MAX_DEADLINE_FACTOR, TimeoutBackoff } from './timeout-backoff.ts';

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
  /** The first pause after a call that timed out (TimeoutBackoff). Default 1000 ms. */
  timeoutBackoffMs?: number;
  /** The longest pause after timeouts in a row. Default 30,000 ms. */
  timeoutBackoffMaxMs?: number;
  /** Over the socket: nudges of the portal's accept while an answer is late (accept-nudge.ts); `null`: none. */
  nudge?: Omit<NudgePolicy, 'onNudge'> | null;
  /**
   * The portal's answer to a call whose caller had heard its timeout (#execSocket), when it says yes or lists: what it
   * tells may still be of use (a listing's tokens). Must not throw.
   */
  onLateAnswer?: (args: readonly string[], stdout: string) => void;
}

export { MAX_DEADLINE_FACTOR, TimeoutBackoff } from './timeout-backoff.ts';
export type { NdsctlPriority } from './call-order.ts';
export type { NdsctlResult } from './ndsctl-outcome.ts';

/**
 * Runs ndsctl with these arguments without queueing: valid only inside the runExclusive callback that got it.
 * `timeoutMs`: this call's own deadline instead of the runner's (a listing's grows with the clients it lists).
 */
export type NdsctlExec = (args: readonly string[], opts?: { timeoutMs?: number }) => Promise<NdsctlResult>;

type RunnerState = 'ready' | 'draining' | 'closed';

interface Job extends QueuedCall {
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
  /** Calls made since start, by kind (callKind): what the portal was asked, for `stats`. */
  readonly #calls = new Map<string, number>();
  readonly #backoff: TimeoutBackoff;
  readonly #nudge: NudgePolicy | undefined;
  readonly #onLateAnswer: ((args: readonly string[], stdout: string) => void) | undefined;
  /** Nudges made during the call in flight (the calls go one at a time). */
  #nudgedNow = 0;
  /**
   * A call over the socket whose caller heard its timeout, still connected: the portal does the work of a request whose
   * caller left before it accepts the next, so the queue holds until this one is answered (or OrphanHold's bound).
   */
  #orphan: { ended: Promise<void>; abort: () => void } | null = null;

  constructor(opts: NdsctlRunnerOptions) {
    if (
      !Array.isArray(opts.command) ||
      opts.command.length === 0 ||
      !opts.command.every((s) => typeof s === 'string' && s.length > 0)
    ) {
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
    this.#onLateAnswer = opts.onLateAnswer;
    this.#nudge =
      opts.nudge === null
        ? undefined
        : {
            ...(opts.nudge ?? DEFAULT_NUDGE),
            onNudge: () => {
              this.#count('nudges');
              this.#nudgedNow++;
            },
          };
    this.#backoff = new TimeoutBackoff(
      opts.timeoutBackoffMs === undefined ? 1000 : Math.max(0, opts.timeoutBackoffMs),
      positive(opts.timeoutBackoffMaxMs, 30_000, 'timeoutBackoffMaxMs'),
    );
  }

  /**
   * Calls made since start by kind (`auth`, `deauth`, `json_one`, `json_all`, …), busy retries not counted; with
   * `timeouts` (calls the portal did not answer in time, the usage worker's listings included), `backoff_waits`
   * (pauses before a call because of them: TimeoutBackoff), `nudges` (of the portal's accept: accept-nudge.ts),
   * `late_answers` (timed-out calls the portal answered after all, the queue held for them) and `orphan_waits` (calls
   * held back for one) once there were any.
   */
  callCounts(): Record<string, number> {
    return Object.fromEntries(this.#calls);
  }

  /**
   * A call made outside `exec` (the usage worker's own listing inside runExclusive) got no answer in time: the next
   * call waits as after one of the runner's own (TimeoutBackoff).
   */
  noteTimeout(): void {
    this.#count('timeouts');
    this.#backoff.timedOut();
  }

  /** The portal answered a call made outside `exec`. */
  noteAnswer(): void {
    this.#backoff.answered();
  }

  #count(kind: string): void {
    this.#calls.set(kind, (this.#calls.get(kind) ?? 0) + 1);
  }

  /** This runner's deadline per call (`timeoutMs`), before any TimeoutBackoff doubling. */
  get timeoutMs(): number {
    return this.#timeoutMs;
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
      this.#queue.push({ rank: rankOf(priority), passed: 0, fn, resolve: resolve as (value: unknown) => void, reject });
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
    this.#orphan?.abort();
    if (this.#busy) await new Promise<void>((resolve) => this.#drained.push(resolve));
  }

  #pump(): void {
    if (this.#busy) return;
    const orphan = this.#orphan;
    if (orphan !== null && this.#queue.length > 0) {
      // The portal is still on a call whose caller gave up: a new call would wait in its queue behind it, and one given
      // up on in turn would lengthen that queue for good. Whichever call is most urgent when it ends goes first.
      this.#busy = true;
      this.#count('orphan_waits');
      void orphan.ended.then(() => {
        this.#busy = false;
        this.#pump();
      });
      return;
    }
    const pause = this.#queue.length > 0 ? this.#backoff.takePause() : 0;
    if (pause > 0) {
      // The queue holds still through the pause: whichever call is most urgent when it ends goes first.
      this.#busy = true;
      this.#count('backoff_waits');
      this.#log.warn('portal did not answer in time, pausing its calls', {
        pause_ms: pause,
        timeouts_in_a_row: this.#backoff.inARow,
      });
      void this.#sleep(pause).then(() => {
        this.#busy = false;
        this.#pump();
      });
      return;
    }
    const job = takeNext(this.#queue);
    if (job === undefined) {
      if (this.#state === 'draining') this.#state = 'closed';
      for (const resolve of this.#drained.splice(0)) resolve();
      return;
    }
    this.#busy = true;
    let held = true;
    const exec: NdsctlExec = (args, opts) => {
      if (!held)
        return Promise.reject(new SluiceError('ERR_INTERNAL', 'ndsctl exec used after its exclusive section ended'));
      if (this.#state === 'closed') return Promise.reject(closedError());
      return this.#execWithRetry(args, opts?.timeoutMs);
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

  async #execWithRetry(args: readonly string[], timeoutMs = this.#timeoutMs): Promise<NdsctlResult> {
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
      throw new SluiceError('ERR_INVALID_ARGUMENT', 'ndsctl arguments must be strings');
    }
    this.#count(callKind(args));
    for (let attempt = 1; ; attempt++) {
      let outcome: RawOutcome;
      this.#nudgedNow = 0;
      try {
        outcome = await this.#execOnce(args, timeoutMs);
      } catch (err) {
        if (err instanceof SluiceError && err.code === 'ERR_NDSCTL_TIMEOUT') this.noteTimeout();
        throw err;
      }
      this.#backoff.answered(this.#nudgedNow > 0);
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

  async #execOnce(args: readonly string[], timeoutMs: number): Promise<RawOutcome> {
    const socket = this.#socketPath?.();
    if (socket !== undefined) return this.#execSocket(socket, args, timeoutMs);
    const chunks: Buffer[] = [];
    let outBytes = 0;
    const deadline = this.#backoff.deadline(timeoutMs);
    const run = runCommand({
      argv: [...this.#command, ...args],
      timeoutMs: deadline,
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
    if (outcome.kind === 'killed') throw killedError(outcome.why, args, deadline);
    return {
      code: outcome.code,
      signal: outcome.signal,
      stdout: Buffer.concat(chunks, outBytes).toString('utf8'),
      stderr: outcome.stderr,
    };
  }

  /**
   * One call over the portal's socket. At the deadline the caller hears ERR_NDSCTL_TIMEOUT, but the connection stays
   * (the orphan, #pump): openNDS serves its socket one request at a time and does the work of a request whose caller
   * left all the same, so hanging up frees nothing and the next call would only wait behind it. It is dropped once the
   * portal answers it (an answer after all: the backoff's pause is not needed), the connection fails, or
   * MAX_DEADLINE_FACTOR × the call's deadline from its start has passed (a frozen portal).
   */
  #execSocket(path: string, args: readonly string[], timeoutMs: number): Promise<RawOutcome> {
    const deadline = this.#backoff.deadline(timeoutMs);
    const holdMs = MAX_DEADLINE_FACTOR * timeoutMs - deadline;
    return new Promise<RawOutcome>((resolve, reject) => {
      const call = socketCall(path, args, this.#maxOutputBytes, this.#nudge);
      let heard = false;
      const timer = this.#timers.setTimeout(() => {
        if (holdMs <= 0) {
          call.abort(killedError('timeout', args, deadline));
          return;
        }
        heard = true;
        this.#inFlight = null;
        this.#orphaned(call, args, holdMs);
        reject(killedError('timeout', args, deadline));
      }, deadline);
      this.#inFlight = { kill: () => call.abort(closedError()) };
      call.promise.then(
        (o) => {
          if (heard) return;
          this.#timers.clearTimeout(timer);
          this.#inFlight = null;
          resolve({ code: o.code, signal: null, stdout: o.stdout, stderr: o.stderr, socket: true });
        },
        (err: unknown) => {
          if (heard) return;
          this.#timers.clearTimeout(timer);
          this.#inFlight = null;
          reject(err instanceof RangeError ? killedError('output', args, deadline) : err);
        },
      );
    });
  }

  /** Keeps a timed-out call's connection until it ends or `holdMs` passed; the queue holds meanwhile (#pump). */
  #orphaned(call: SocketCall, args: readonly string[], holdMs: number): void {
    const bound = this.#timers.setTimeout(() => call.abort(closedError()), holdMs);
    const orphan = {
      abort: () => call.abort(closedError()),
      ended: call.promise.then(
        (o) => {
          this.#count('late_answers');
          if (o.code === NDSCTL_EXIT.ok) this.#onLateAnswer?.(args, o.stdout);
          // The portal answered after all: it is slow, not gone. No pause (the deadline stays long: TimeoutBackoff).
          this.#backoff.answered(true);
        },
        () => {},
      ),
    };
    void orphan.ended.finally(() => {
      this.#timers.clearTimeout(bound);
      if (this.#orphan === orphan) this.#orphan = null;
    });
    this.#orphan = orphan;
  }
}

/** A call's kind for the counts: its verb, and for `json` whether it asks for one client or all. */
function callKind(args: readonly string[]): string {
  const verb = args[0] ?? '';
  return verb === 'json' ? (args.length > 1 ? 'json_one' : 'json_all') : verb;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SluiceError('ERR_INVALID_ARGUMENT', `${name} must be a positive number`);
  }
  return value;
}
