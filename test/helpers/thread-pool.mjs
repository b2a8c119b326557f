// test/run.mjs's side of test/helpers/thread-host.mjs: starts the host process when the first fast file is run, hands
// it files, and gives each file's result back as its own process's would be. The host leads a process group of its own
// (detached), so the runner can lower its priority and kill whatever a file spawned, as it does a file process's.
// When the host itself dies (a crash no thread could contain), each file it was running fails with the host's last
// words, and the next file starts a new host.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpuMs } from './proc-stat.mjs';

const HOST = new URL('./thread-host.mjs', import.meta.url).pathname;
/**
 * V8's flags for the hosts. V8 hands a function to its optimizing compiler (TurboFan, which runs on V8's helper
 * threads) once the function has run through its interrupt budget of bytecode. Each file's isolate starts cold and
 * lives a second or two, so at V8's default budget (67,584) much of that compiling did not pay for itself before the
 * file ended, and it is done again in each of ~200 isolates. At four times the default the fast tier's helper threads
 * use ~6 s less CPU and the files' own threads ~3 s more (docs/testing.md "The edit loop").
 * `--preserve-symlinks` (the threads inherit it): Node's ESM loader then takes a resolved module's path as it is
 * instead of asking realpath for it and making its URL again, at each of a file's ~300 imports between its bundle's
 * chunks (~30 ms of CPU of `merchant/pricing`'s ~240 in a thread). Nothing under node_modules is a symlink after
 * `npm ci`; a worktree whose node_modules is one loads packages by the worktree's path.
 * `--experimental-vm-modules`: a file's chunks are vm.SourceTextModules (bundle-linker.mjs); its warning, which each
 * thread would print into its first file's output, is the one ExperimentalWarning the hosts leave out.
 */
const HOST_FLAGS = [
  '--interrupt-budget=270336',
  '--preserve-symlinks',
  '--experimental-vm-modules',
  // Node 20.11 on; an older Node prints the warning, once a thread.
  ...(process.allowedNodeEnvironmentFlags.has('--disable-warning') ? ['--disable-warning=ExperimentalWarning'] : []),
];

/** How much of the host's own output (there should be none) a failure quotes. */
const TAIL_CHARS = 4_000;

export class ThreadHost {
  /**
   * @param {{ cwd: string, env: NodeJS.ProcessEnv, slots?: (module: string) => string[],
   *   started?: (pid: number) => void, ended?: (pid: number) => void }} o
   *   slots: a bundle's path in each of its build's slots (bundleTests), for a thread's later files; without them each
   *   file gets a new thread. started/ended: the host's pid (= its process group) as it starts and after it exited
   */
  constructor({ cwd, env, slots = () => [], started, ended }) {
    Object.assign(this, { cwd, env, slots, started, ended });
    this.current = null;
    this.pending = new Map();
    this.nextId = 0;
    /** The Linux tids of the files' threads, which a thread may outlive its file by, waiting for the next. */
    this.fileTids = new Set();
  }

  /**
   * Runs one bundled file in a thread of the host (`ownThread`: a new one, not one that ran another file).
   * @returns {Promise<{ text: string, code: number | null, signal: string | null, timedOut: boolean, cpuMs: number,
   *   runqMs: number, thread: number, files: number, left: string[] | null }>} thread: the worker's threadId; files:
   *   how many files that thread ran, this one included; left: what the file left behind (its thread then ended)
   */
  run(module, timeoutMs, ownThread = false) {
    const host = this.#host();
    const id = this.nextId++;
    return new Promise((resolve) => {
      // Alone: no other file ran in the host at any time of this one's run. A file beside the lanes that starts and
      // ends within a long file's run leaves the host without others at both its ends, and the host's CPU over the
      // long file would count both files' work.
      const job = {
        resolve,
        timeoutMs,
        timedOut: false,
        timer: null,
        cpuBefore: this.cpuMs(),
        alone: this.pending.size === 0,
      };
      for (const other of this.pending.values()) other.alone = false;
      job.timer = setTimeout(() => {
        job.timedOut = true;
        host.child.send({ stop: id });
      }, timeoutMs);
      this.pending.set(id, job);
      host.child.send({ run: { id, module, slots: ownThread ? [] : this.slots(module) } });
    });
  }

  /** The CPU time (user + sys, ms) the host and the children it reaped used so far; null when it is not running. */
  cpuMs() {
    if (!this.current) return null;
    try {
      return cpuMs(readFileSync(`/proc/${this.current.pid}/stat`, 'utf8'), true);
    } catch {
      return null;
    }
  }

  /**
   * The host's CPU time (user + sys, ms) so far, split: its main thread, the threads still running (V8's helper
   * threads, for its collector and optimizing compiler, and libuv's pool) and the files' threads, those that ended and
   * those that wait for a file (their tids, as results gave them). Read when no file runs; null when the host is not
   * running or there is no /proc.
   */
  cpuSplitMs() {
    if (!this.current) return null;
    const { pid } = this.current;
    const ms = (stat) => cpuMs(stat);
    try {
      const total = ms(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      let main = 0;
      let helpers = 0;
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const own = ms(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
        if (Number(tid) === pid) main = own;
        else if (!this.fileTids.has(Number(tid))) helpers += own;
      }
      return { main, helpers, files: total - main - helpers };
    } catch {
      return null;
    }
  }

  /**
   * Lets the host end (it exits once disconnected) and waits for it; its CPU split as it ends (cpuSplitMs), with its
   * peak resident memory (kB, /proc's VmHWM; 0 without it).
   */
  async close() {
    const host = this.current;
    if (!host) return null;
    const split = this.cpuSplitMs();
    let peakRssKb = 0;
    try {
      peakRssKb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${host.pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* no /proc */
    }
    const exited = new Promise((r) => host.child.once('exit', r));
    host.child.disconnect();
    await exited;
    return split && { ...split, peakRssKb };
  }

  #host() {
    if (this.current) return this.current;
    const child = spawn(process.execPath, [...HOST_FLAGS, HOST], {
      cwd: this.cwd,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    const host = { child, pid: child.pid, tail: '' };
    const keep = (d) => (host.tail = (host.tail + d).slice(-TAIL_CHARS));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('message', ({ id, code, out, cpuMs, runqMs, thread, tid, files, left }) => {
      if (tid) this.fileTids.add(tid);
      const job = this.pending.get(id);
      if (!job) return;
      this.pending.delete(id);
      clearTimeout(job.timer);
      const timedOut = job.timedOut;
      const text = timedOut ? `${out}\n[run] timed out after ${job.timeoutMs} ms: its thread was terminated\n` : out;
      // The host's own CPU over the file (its threads, V8's helper threads, the worker's start) when it ran this file
      // alone from its start to its end, as test/run.mjs uses it: the figure a file's own process gave. Else the file's
      // thread alone.
      const hostCpu = job.alone && job.cpuBefore !== null ? this.cpuMs() - job.cpuBefore : null;
      job.resolve({
        text,
        code,
        signal: null,
        timedOut,
        cpuMs: hostCpu ?? Math.round(cpuMs),
        runqMs: Math.round(runqMs),
        thread,
        files,
        left,
      });
    });
    child.once('exit', (code, signal) => {
      if (this.current === host) this.current = null;
      for (const [id, job] of this.pending) {
        this.pending.delete(id);
        clearTimeout(job.timer);
        job.resolve({
          text:
            `[run] the fast files' process (pid ${host.pid}) ended (${signal ?? `status ${code}`}) while this file ` +
            `ran in it; its own output:\n${host.tail}`,
          code: null,
          signal,
          timedOut: job.timedOut,
          cpuMs: 0,
          runqMs: 0,
          thread: -1,
          files: 0,
          left: null,
        });
      }
      this.ended?.(host.pid);
    });
    this.current = host;
    this.started?.(host.pid);
    return host;
  }
}
