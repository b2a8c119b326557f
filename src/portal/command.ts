/**
 * The command transport: one run of ndsctl (or the wrapper configured in its place), for both the runner's calls and
 * the usage worker's snapshot. The child gets its own process group, killed whole: a wrapper (sh, ip netns exec) that
 * hangs would otherwise leave its child behind on every call. A killed run is reported once the group
 * has closed its pipes, or after a grace period for a process stuck in the kernel, so the next ndsctl never races the
 * lock of one still dying. Stdout goes to the caller chunk by chunk (it decides what to keep and when to refuse);
 * only a tail of stderr is kept, for diagnostics (Debian's ndsctl leaks pgrep warnings there).
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { systemTimers, type Timers } from '../time.ts';

export type SpawnFn = (file: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

/** ndsctl exit codes (openNDS / nodogsplash src/ndsctl.c). */
export const NDSCTL_EXIT = { ok: 0, no: 1, abnormalReply: 2, cannotConnect: 3, busy: 4 } as const;

export type KillReason = 'timeout' | 'output' | 'destroy';

export type CommandOutcome =
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null; stderr: string }
  /** `refusal`: what onStdout answered when it stopped the run ('output'). */
  | { kind: 'killed'; why: KillReason; refusal?: string }
  /** The process never started (ENOENT, EACCES…); `error` is what spawn threw or emitted. */
  | { kind: 'spawn-failed'; error: unknown };

export interface CommandRun {
  /** Settles once; never rejects. */
  outcome: Promise<CommandOutcome>;
  /** Kills the process group (reported as 'destroy'); a no-op once the run is over. */
  kill(): void;
}

export interface CommandOptions {
  argv: readonly string[];
  timeoutMs: number;
  /** Each stdout chunk as it arrives; a returned string refuses the output and kills the run. */
  onStdout(chunk: Buffer): string | undefined;
  spawn?: SpawnFn;
  timers?: Timers;
  env?: NodeJS.ProcessEnv;
}

const STDERR_TAIL = 4096;
const REAP_GRACE_MS = 2000;

export function runCommand(opts: CommandOptions): CommandRun {
  const [file, ...args] = opts.argv as [string, ...string[]];
  const timers = opts.timers ?? systemTimers;
  let kill: () => void = () => {};
  const outcome = new Promise<CommandOutcome>((resolve) => {
    let child: ChildProcess;
    try {
      child = (opts.spawn ?? (nodeSpawn as SpawnFn))(file, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        ...(opts.env === undefined ? {} : { env: opts.env }),
      });
    } catch (error) {
      resolve({ kind: 'spawn-failed', error });
      return;
    }
    let errTail = '';
    let done = false;
    let killedFor: KillReason | null = null;
    let refusal: string | undefined;
    let reapTimer: unknown = null;
    const killed = (): CommandOutcome => ({
      kind: 'killed',
      why: killedFor!,
      ...(refusal === undefined ? {} : { refusal }),
    });
    const finish = (result: CommandOutcome): void => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      if (reapTimer !== null) timers.clearTimeout(reapTimer);
      resolve(result);
    };
    const stop = (why: KillReason): void => {
      if (killedFor !== null || done) return;
      killedFor = why;
      killTree(child);
      // A process stuck in the kernel may never close its pipes; do not hold the caller forever for it.
      reapTimer = timers.setTimeout(() => finish(killed()), REAP_GRACE_MS);
    };
    kill = () => stop('destroy');
    const timer = timers.setTimeout(() => stop('timeout'), opts.timeoutMs);

    child.stdout?.on('data', (chunk: Buffer) => {
      if (killedFor !== null || done) return;
      refusal = opts.onStdout(chunk);
      if (refusal !== undefined) stop('output');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      errTail = (errTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    child.on('error', (error) => {
      // Spawn failures (ENOENT, EACCES) arrive here without a process; kill failures are ignored.
      if (child.pid === undefined) finish({ kind: 'spawn-failed', error });
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      finish(killedFor !== null ? killed() : { kind: 'exited', code, signal, stderr: errTail });
    });
  });
  return { outcome, kill: () => kill() };
}

function killTree(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) {
      process.kill(-child.pid, 'SIGKILL');
      return;
    }
  } catch {
    // Not a group leader (injected spawn) or already gone: fall back to the child alone.
  }
  try {
    child.kill('SIGKILL');
  } catch {
    // Already exited.
  }
}
