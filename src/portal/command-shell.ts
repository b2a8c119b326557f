/**
 * The commands sluice runs often (nft; conntrack and ip when a client's flows are flushed) go through one long-lived
 * shell per thread instead of a spawn from Node each. Spawning from the daemon forks the whole Node process (its page
 * tables, ~100 MB mapped) and the child tears that copy down again at its exec: measured on the dev machine,
 * `nft -j list table` of 32 clients spawned from a Node process holding 80 MB cost it 2.9 ms of CPU and the child
 * 5.3 ms, run by a shell the process keeps 0.5 ms and 3.4 ms (docs/performance.md "Where sluice's part goes"). Each
 * run is still its own process, with its own exit status, stdout and stderr, so callers see what a spawned command
 * gives them.
 *
 * The shell (`/bin/sh`: busybox ash on OpenWrt) reads commands from its stdin and runs one at a time: each argument
 * single-quoted, the batch given on a quoted here-document (no expansion) or /dev/null, then its exit status and a
 * marker that cannot occur in the command's output (a random word of this shell) on stdout and stderr. A run that
 * outlasts its deadline, or whose output its caller refuses, kills the shell's process group (the shell is its leader)
 * and the next run starts a fresh shell. The shell ends when the daemon does (its stdin closes).
 *
 * What this changes for the figures: the commands' CPU is charged to the shell (its children), which the daemon reaps
 * only when the shell ends, so a CPU figure of the daemon's process with its reaped children must add the shell's.
 */
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { CommandOutcome } from './command.ts';

export interface ShellRunOptions {
  argv: readonly string[];
  /** Given on the command's stdin ('' : /dev/null). */
  stdin: string;
  timeoutMs: number;
  /** Each stdout chunk; a returned string refuses the output (the run is killed: 'killed', why 'output'). */
  onStdout?: (chunk: Buffer) => string | undefined;
}

/** As runCommand's outcome; `stdout` is every byte the command printed when no onStdout took them. */
export type ShellOutcome = CommandOutcome & { stdout?: Buffer };

interface Job extends ShellRunOptions {
  resolve: (outcome: ShellOutcome) => void;
}

/** sh's status for a command it could not find (127) or run (126): nft, conntrack and ip exit below 126. */
const NOT_RUN = new Set([126, 127]);

const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;

export class CommandShell {
  readonly #shell: string;
  #child: ChildProcess | null = null;
  #marker = '';
  readonly #queue: Job[] = [];
  #busy = false;
  /** Set while a job runs: its shell, and what that shell's stdout, stderr and end bring. */
  #current: {
    child: ChildProcess;
    onOut: (b: Buffer) => void;
    onErr: (b: Buffer) => void;
    onExit: () => void;
  } | null = null;
  #started = 0;

  constructor(shell = '/bin/sh') {
    this.#shell = shell;
  }

  /** How many shells were started (a killed or dead one is started again). */
  get started(): number {
    return this.#started;
  }

  run(options: ShellRunOptions): Promise<ShellOutcome> {
    return new Promise((resolve) => {
      this.#queue.push({ ...options, resolve });
      this.#next();
    });
  }

  /** Ends the shell (tests; the daemon's ends with it): resolved once it has exited. */
  close(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child === null) return Promise.resolve();
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    // Unref'd while it idled: its end is waited for.
    child.ref();
    for (const s of [child.stdout, child.stderr]) (s as unknown as { ref?: () => void }).ref?.();
    child.stdin?.end();
    return closed;
  }

  #next(): void {
    if (this.#busy) return;
    const job = this.#queue.shift();
    if (job === undefined) return;
    this.#busy = true;
    void this.#runJob(job).then((outcome) => {
      this.#busy = false;
      job.resolve(outcome);
      this.#next();
    });
  }

  #ensure(): ChildProcess | null {
    if (this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null) return this.#child;
    let child: ChildProcess;
    try {
      child = nodeSpawn(this.#shell, ['-s'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    } catch {
      return null;
    }
    if (child.pid === undefined) {
      child.on('error', () => undefined);
      return null;
    }
    this.#started++;
    this.#marker = `SLUICE_${randomBytes(8).toString('hex')}`;
    // A killed shell's last words never reach the next job (it runs on a new shell).
    const mine = () => (this.#current?.child === child ? this.#current : null);
    child.stdout!.on('data', (b: Buffer) => mine()?.onOut(b));
    child.stderr!.on('data', (b: Buffer) => mine()?.onErr(b));
    child.stdin!.on('error', () => undefined);
    child.on('error', () => undefined);
    child.on('close', () => {
      if (this.#child === child) this.#child = null;
      mine()?.onExit();
    });
    // Idle, it keeps nothing alive: a run holds its deadline's timer.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
    this.#child = child;
    return child;
  }

  #runJob(job: Job): Promise<ShellOutcome> {
    const child = this.#ensure();
    if (child === null) return Promise.resolve({ kind: 'spawn-failed', error: new Error(`cannot run ${this.#shell}`) });
    const marker = this.#marker;
    const outEnd = Buffer.from(`\n${marker} `);
    const errEnd = Buffer.from(`\n${marker}\n`);
    return new Promise<ShellOutcome>((resolve) => {
      const out: Buffer[] = [];
      let outTail = Buffer.alloc(0);
      let outSize = 0;
      let status: number | null = null;
      let err = Buffer.alloc(0);
      let errDone = false;
      let refused: string | undefined;
      let done = false;
      const finish = (outcome: ShellOutcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#current = null;
        resolve(outcome);
      };
      const kill = (): void => {
        if (this.#child === child) this.#child = null;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const settle = (): void => {
        if (status === null || !errDone) return;
        const stderr = err.toString('utf8');
        if (NOT_RUN.has(status)) {
          finish({ kind: 'spawn-failed', error: new Error(stderr.trim().split('\n')[0] ?? `status ${status}`) });
          return;
        }
        const stdout = job.onStdout === undefined ? Buffer.concat(out, outSize) : undefined;
        finish({ kind: 'exited', code: status, signal: null, stderr, ...(stdout && { stdout }) });
      };
      const timer = setTimeout(() => {
        kill();
        finish({ kind: 'killed', why: 'timeout' });
      }, job.timeoutMs);
      const onExit = (): void =>
        finish({ kind: 'exited', code: null, signal: 'SIGKILL', stderr: err.toString('utf8') });
      const onOut = (chunk: Buffer): void => {
        if (status !== null) return;
        // The marker may straddle chunks: look in what is held back plus this chunk.
        const seen = Buffer.concat([outTail, chunk]);
        const at = seen.indexOf(outEnd);
        const line = at < 0 ? -1 : seen.indexOf(10, at + outEnd.length);
        if (at >= 0 && line < 0) {
          outTail = seen; // the status has not come whole yet
          return;
        }
        const body = at < 0 ? seen.subarray(0, Math.max(0, seen.length - outEnd.length)) : seen.subarray(0, at);
        outTail = at < 0 ? seen.subarray(body.length) : Buffer.alloc(0);
        if (body.length > 0) {
          if (job.onStdout !== undefined) {
            refused ??= job.onStdout(Buffer.from(body));
            if (refused !== undefined) {
              kill();
              finish({ kind: 'killed', why: 'output', refusal: refused });
              return;
            }
          } else {
            out.push(Buffer.from(body));
            outSize += body.length;
          }
        }
        if (at >= 0) {
          status = Number(seen.subarray(at + outEnd.length, line).toString('latin1'));
          settle();
        }
      };
      const onErr = (chunk: Buffer): void => {
        err = Buffer.concat([err, chunk]);
        if (err.length >= errEnd.length && err.subarray(err.length - errEnd.length).equals(errEnd)) {
          err = err.subarray(0, err.length - errEnd.length);
          errDone = true;
          settle();
        } else if (err.length > 8192) {
          err = err.subarray(err.length - 4096);
        }
      };
      this.#current = { child, onOut, onErr, onExit };
      child.stdin!.write(this.#script(job, marker));
    });
  }

  #script(job: Job, marker: string): string {
    const command = job.argv.map(quote).join(' ');
    let input = ' </dev/null';
    let body = '';
    if (job.stdin !== '') {
      let end = `${marker}_IN`;
      while (job.stdin.split('\n').includes(end)) end += '_';
      input = ` <<'${end}'`;
      body = `${job.stdin.endsWith('\n') ? job.stdin : `${job.stdin}\n`}${end}\n`;
    }
    // The output is followed by "\n<marker> <status>\n", stderr by "\n<marker>\n": both always come.
    return `${command}${input}\n${body}s=$?; printf '\\n%s %s\\n' ${marker} $s; printf '\\n%s\\n' ${marker} >&2\n`;
  }
}

/**
 * One shell per thread and purpose (a thread's runs wait for each other, never for another thread's): nft's runs and
 * the rest ('commands'), a close's flow deletes ('flows': conntrack and `ip -6 neigh`, flow-flush.ts) and the tick's
 * counter dump ('counters': meter/kernel-task.ts, on the main thread while it is small), which would otherwise hold
 * the next gate's nft run behind them.
 */
const shells = new Map<string, CommandShell>();

export function sharedCommandShell(purpose: 'commands' | 'flows' | 'counters' = 'commands'): CommandShell {
  let shell = shells.get(purpose);
  if (shell === undefined) {
    shell = new CommandShell();
    shells.set(purpose, shell);
  }
  return shell;
}
