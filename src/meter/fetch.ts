/**
 * Fetching one `ndsctl json` snapshot of all clients, inside the usage worker (so neither the spawn() cost, which
 * grows with the caller's RSS, nor the bytes ever touch the main thread).
 *
 * Two sources:
 *  - `command`: runs `<ndsctl argv> json`, reads stdout only (Debian's ndsctl leaks pgrep warnings on stderr),
 *    retries exit 4 ("busy": another ndsctl holds the lock) until the deadline; exit 3 means the portal is not running.
 *  - `socket`: speaks the portal's control socket directly, which is exactly what ndsctl does (openNDS src/ndsctl.c,
 *    nodogsplash src/ndsctl.c): connect to the unix stream socket, write `json\r\n\r\n`, read until the portal closes.
 *    openNDS: `<tmpfs mountpoint>/ndsctl.sock` (mountpoint is the first tmpfs of /tmp /run /var; option ndsctlsocket);
 *    nodogsplash: /tmp/ndsctl.sock. It skips ndsctl's lock file and process, not the portal's own one-at-a-time handling.
 */
import { DEFAULT_OUTPUT_CAP, OutputGuard } from './output-bound.ts';
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';

export type SnapshotSource =
  | { kind: 'command'; argv: readonly string[] }
  | { kind: 'socket'; path: string };

export type FetchProblem = 'busy' | 'timeout' | 'unreachable' | 'failed';

export type FetchOutcome =
  | { ok: true; bytes: Buffer; attempts: number }
  | { ok: false; problem: FetchProblem; message: string; attempts: number };

export interface FetchOptions {
  timeoutMs: number;
  /** Pause between attempts while ndsctl reports busy. */
  busyRetryMs?: number;
  /**
   * The cap on one snapshot (`main.portal_output_max`); below it, output past what its declared client count can
   * need is refused as it arrives (output-bound.ts). A 100k-client openNDS snapshot is ~90 MB.
   */
  maxBytes?: number;
  /** Where to read the bytes (reused tick after tick by the worker); a fresh one if absent. */
  into?: SnapshotBuffer;
}

/**
 * The bytes of one snapshot, read into one buffer that is kept from tick to tick: a worker runs one task at a time, and
 * chunks + concat would cost two snapshot-sized allocations per tick (18 MB at 10k clients, 180 MB at 100k) and the
 * GC work to drop them. It grows by half again when a snapshot does not fit and shrinks when snapshots got much
 * smaller, and always keeps one byte after the data for the scanner's sentinel quote.
 */
export class SnapshotBuffer {
  private buf: Buffer;
  private size = 0;
  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialBytes));
  }
  get length(): number { return this.size; }
  get capacity(): number { return this.buf.length; }
  /** Starts a new snapshot; `expectedBytes` (the last snapshot's size) lets a much smaller buffer be released. */
  reset(expectedBytes = 0): void {
    if (expectedBytes > 0 && this.buf.length > 4 * 1024 * 1024 && expectedBytes * 4 < this.buf.length) {
      this.buf = Buffer.allocUnsafe(Math.ceil(expectedBytes * 1.5) + 1);
    }
    this.size = 0;
  }
  append(chunk: Uint8Array, length = chunk.length): void {
    const needed = this.size + length + 1;
    if (needed > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(needed + (needed >> 1), this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.size);
      this.buf = next;
    }
    if (length === chunk.length) this.buf.set(chunk, this.size);
    else this.buf.set(chunk.subarray(0, length), this.size);
    this.size += length;
  }
  /** The bytes read so far (no sentinel), valid until the next append or reset(). */
  head(): Uint8Array {
    return this.buf.subarray(0, this.size);
  }
  /** The snapshot, valid until the next reset(); the byte after it is a '"' (see scan.ts). */
  bytes(): Buffer {
    this.buf[this.size] = 0x22;
    return this.buf.subarray(0, this.size);
  }
}

/** Socket reads land here first (one per socket, reused for every read) and are copied into the SnapshotBuffer. */
const READ_CHUNK = 256 * 1024;

const NDSCTL_BUSY = 4;
const NDSCTL_CANNOT_CONNECT = 3;

export async function fetchSnapshot(source: SnapshotSource, options: FetchOptions): Promise<FetchOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  const maxBytes = options.maxBytes ?? DEFAULT_OUTPUT_CAP;
  const into = options.into ?? new SnapshotBuffer();
  if (source.kind === 'socket') {
    const r = await readSocket(source.path, options.timeoutMs, maxBytes, into);
    return { ...r, attempts: 1 };
  }
  for (let attempt = 1; ; attempt++) {
    const r = await runCommand(source.argv, Math.max(1, deadline - Date.now()), maxBytes, into);
    if (r.ok || r.problem !== 'busy') return { ...r, attempts: attempt };
    const pause = options.busyRetryMs ?? 100;
    if (Date.now() + pause >= deadline) return { ...r, problem: 'timeout', message: `ndsctl busy until the deadline (${attempt} attempts)`, attempts: attempt };
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

type Attempt = { ok: true; bytes: Buffer } | { ok: false; problem: FetchProblem; message: string };

function runCommand(argv: readonly string[], timeoutMs: number, maxBytes: number, into: SnapshotBuffer): Promise<Attempt> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (file === undefined) { resolve({ ok: false, problem: 'failed', message: 'empty ndsctl command' }); return; }
    into.reset(into.length);
    const guard = new OutputGuard(maxBytes);
    let size = 0;
    let settled = false;
    const finish = (r: Attempt): void => { if (!settled) { settled = true; clearTimeout(timer); resolve(r); } };
    // Own process group, killed whole: a wrapper (sh, ip netns exec) that hangs would otherwise leave its child
    // behind on every tick (issue 14 #7); the valve's runner does the same.
    const child = spawn(file, [...args, 'json'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    const killGroup = (): void => {
      try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
    };
    const timer = setTimeout(() => {
      killGroup();
      finish({ ok: false, problem: 'timeout', message: `ndsctl json took longer than ${timeoutMs} ms` });
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      into.append(chunk);
      const refused = guard.check(size, () => into.head());
      if (refused !== undefined) { killGroup(); finish({ ok: false, problem: 'failed', message: refused }); }
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      finish({ ok: false, problem: err.code === 'ENOENT' ? 'unreachable' : 'failed', message: `cannot run ${file}: ${err.message}` });
    });
    child.on('close', (code, signal) => {
      if (code === 0) finish({ ok: true, bytes: into.bytes() });
      else if (code === NDSCTL_BUSY) finish({ ok: false, problem: 'busy', message: 'ndsctl is busy (exit 4)' });
      else if (code === NDSCTL_CANNOT_CONNECT) finish({ ok: false, problem: 'unreachable', message: 'ndsctl cannot reach the portal (exit 3)' });
      else finish({ ok: false, problem: 'failed', message: `ndsctl json exited with ${code ?? signal}` });
    });
  });
}

function readSocket(path: string, timeoutMs: number, maxBytes: number, into: SnapshotBuffer): Promise<Attempt> {
  return new Promise((resolve) => {
    into.reset(into.length);
    const guard = new OutputGuard(maxBytes);
    let size = 0;
    let settled = false;
    const socket = createConnection({
      path,
      onread: {
        buffer: () => Buffer.allocUnsafe(READ_CHUNK),
        callback: (n: number, chunk: Uint8Array): boolean => {
          if (settled) return false;
          size += n;
          into.append(chunk, n);
          const refused = guard.check(size, () => into.head());
          if (refused !== undefined) { finish({ ok: false, problem: 'failed', message: refused }); return false; }
          return true;
        },
      },
    });
    const finish = (r: Attempt): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, problem: 'timeout', message: `ndsctl.sock json took longer than ${timeoutMs} ms` }), timeoutMs);
    socket.on('connect', () => socket.write('json\r\n\r\n'));
    socket.on('end', () => finish({ ok: true, bytes: into.bytes() }));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const unreachable = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      finish({ ok: false, problem: unreachable ? 'unreachable' : 'failed', message: `${path}: ${err.message}` });
    });
  });
}
