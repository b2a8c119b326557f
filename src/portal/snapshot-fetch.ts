/**
 * Fetching one `ndsctl json` snapshot of all clients, for the usage worker (so neither the spawn() cost, which grows
 * with the caller's RSS, nor the bytes ever touch the main thread), into a buffer kept from tick to tick.
 *
 * Two sources, over the same transports as the runner's calls:
 *  - `command` (command.ts): runs `<ndsctl argv> json`, reads stdout only, retries exit 4 ("busy": another ndsctl
 *    holds the lock) until the deadline; exit 3 means the portal is not running.
 *  - `socket` (socket-transport.ts): speaks the portal's control socket directly, which is exactly what ndsctl does.
 *    openNDS: `<tmpfs mountpoint>/ndsctl.sock` (mountpoint is the first tmpfs of /tmp /run /var; option ndsctlsocket);
 *    nodogsplash: /tmp/ndsctl.sock. It skips ndsctl's lock file and process, not the portal's own one-at-a-time
 *    handling.
 * Either way the output is refused as it arrives once it runs past what its declared client count can need.
 */
import { NDSCTL_EXIT, runCommand } from './command.ts';
import { DEFAULT_OUTPUT_CAP, OutputGuard } from './output-bound.ts';
import { socketExchange, socketRequest } from './socket-transport.ts';
import { DEFAULT_NUDGE, nudgeWhileSilent } from './accept-nudge.ts';

export type SnapshotSource = { kind: 'command'; argv: readonly string[] } | { kind: 'socket'; path: string };

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
  /**
   * Called after a read the bound accepted that found the portal slower than the reader (CAUGHT_UP_BELOW), with all
   * the bytes so far (a sentinel quote after them, valid until the next read): the worker scans the clients that
   * arrived while the rest is still coming (scan.ts SnapshotScan).
   * Over the socket only: a command can be retried (ndsctl busy), and a reply is one attempt's. What it throws ends
   * the reading and is thrown by fetchSnapshot.
   */
  onBytes?: (bytes: Buffer) => void;
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
  get length(): number {
    return this.size;
  }
  get capacity(): number {
    return this.buf.length;
  }
  /** Starts a new snapshot; `expectedBytes` (the last snapshot's size) lets a much smaller buffer be released. */
  reset(expectedBytes = 0): void {
    if (expectedBytes > 0 && this.buf.length > 4 * 1024 * 1024 && expectedBytes * 4 < this.buf.length) {
      this.buf = Buffer.allocUnsafe(Math.ceil(expectedBytes * 1.5) + 1);
    }
    this.size = 0;
  }
  append(chunk: Uint8Array, length = chunk.length): void {
    const needed = this.size + length + 1;
    if (needed > this.buf.length) this.grow(needed);
    if (length === chunk.length) this.buf.set(chunk, this.size);
    else this.buf.set(chunk.subarray(0, length), this.size);
    this.size += length;
  }
  /**
   * Where the next read may land: the free space after the data, less the sentinel's byte, grown first (as append
   * grows) when less than `min` bytes are free. Count what the read wrote with commit().
   */
  space(min = SPACE_MIN): Uint8Array {
    if (this.buf.length - this.size - 1 < min) this.grow(this.size + min + 1);
    return this.buf.subarray(this.size, this.buf.length - 1);
  }
  /** `n` bytes were read into the view space() gave. */
  commit(n: number): void {
    this.size += n;
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
  private grow(needed: number): void {
    const next = Buffer.allocUnsafe(Math.max(needed + (needed >> 1), this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.size);
    this.buf = next;
  }
}

/**
 * A read shorter than this found the socket nearly drained: the portal writes slower than the worker reads, so the
 * bytes so far are handed on (onBytes) to be scanned while the next ones come. While the bytes pour in (reads of the
 * socket's whole buffer, ~210 KiB), reading on is faster: a scan between reads stalls the portal's writes once the
 * socket's buffer is full, and wakes it ~40 times for 9 MB (measured: the whole tick's fetch and scan 13–17 ms streamed
 * after every read, against 12.7–14.1 read whole then scanned, with the bench's stand-in portal).
 */
const CAUGHT_UP_BELOW = 64 * 1024;

/**
 * The least free space a socket read is offered (the buffer grows below it, at least doubling, so reads stay big: a
 * unix socket hands over at most ~210 KiB per read here). space() is asked after every read, the last one's too, so
 * this is also what a reply leaves free in the buffer without growing it: kept small, a small router's reply (up to
 * 60 KiB) stays in the new buffer (64 KiB), on the main thread's idle ticks too. At 64 KiB every reply grew it.
 */
const SPACE_MIN = 4 * 1024;

export async function fetchSnapshot(source: SnapshotSource, options: FetchOptions): Promise<FetchOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  const maxBytes = options.maxBytes ?? DEFAULT_OUTPUT_CAP;
  const into = options.into ?? new SnapshotBuffer();
  if (source.kind === 'socket') {
    const r = await fetchBySocket(source.path, {
      timeoutMs: options.timeoutMs,
      maxBytes,
      into,
      onBytes: options.onBytes,
    });
    return { ...r, attempts: 1 };
  }
  for (let attempt = 1; ; attempt++) {
    const r = await fetchByCommand(source.argv, Math.max(1, deadline - Date.now()), maxBytes, into);
    if (r.ok || r.problem !== 'busy') return { ...r, attempts: attempt };
    const pause = options.busyRetryMs ?? 100;
    if (Date.now() + pause >= deadline)
      return {
        ...r,
        problem: 'timeout',
        message: `ndsctl busy until the deadline (${attempt} attempts)`,
        attempts: attempt,
      };
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

type Attempt = { ok: true; bytes: Buffer } | { ok: false; problem: FetchProblem; message: string };

async function fetchByCommand(
  argv: readonly string[],
  timeoutMs: number,
  maxBytes: number,
  into: SnapshotBuffer,
): Promise<Attempt> {
  if (argv.length === 0) return { ok: false, problem: 'failed', message: 'empty ndsctl command' };
  into.reset(into.length);
  const guard = new OutputGuard(maxBytes);
  const run = runCommand({
    argv: [...argv, 'json'],
    timeoutMs,
    onStdout: (chunk) => {
      into.append(chunk);
      return guard.check(into.length, () => into.head());
    },
  });
  const outcome = await run.outcome;
  switch (outcome.kind) {
    case 'spawn-failed': {
      const err = outcome.error as NodeJS.ErrnoException;
      return {
        ok: false,
        problem: err.code === 'ENOENT' ? 'unreachable' : 'failed',
        message: `cannot run ${argv[0]}: ${err.message}`,
      };
    }
    case 'killed':
      if (outcome.why === 'timeout')
        return { ok: false, problem: 'timeout', message: `ndsctl json took longer than ${timeoutMs} ms` };
      return { ok: false, problem: 'failed', message: outcome.refusal ?? 'ndsctl json killed' };
    case 'exited':
      if (outcome.code === NDSCTL_EXIT.ok) return { ok: true, bytes: into.bytes() };
      if (outcome.code === NDSCTL_EXIT.busy) return { ok: false, problem: 'busy', message: 'ndsctl is busy (exit 4)' };
      if (outcome.code === NDSCTL_EXIT.cannotConnect)
        return { ok: false, problem: 'unreachable', message: 'ndsctl cannot reach the portal (exit 3)' };
      return { ok: false, problem: 'failed', message: `ndsctl json exited with ${outcome.code ?? outcome.signal}` };
  }
}

async function fetchBySocket(
  path: string,
  options: {
    timeoutMs: number;
    maxBytes: number;
    into: SnapshotBuffer;
    onBytes: ((bytes: Buffer) => void) | undefined;
  },
): Promise<Attempt> {
  const { timeoutMs, maxBytes, into, onBytes } = options;
  into.reset(into.length);
  const guard = new OutputGuard(maxBytes);
  let thrown: { error: unknown } | undefined;
  let offered = 0;
  // The runner's calls wait behind this one (the tick holds the portal's queue), so nobody else would arrive to let it
  // in if it waits in the portal's accept queue: it nudges for itself, as the runner's calls do.
  const nudging = nudgeWhileSilent(path, DEFAULT_NUDGE);
  // Reads land in the kept buffer itself (no copy): each chunk is the start of the view space() gave.
  const exchange = socketExchange(
    path,
    socketRequest(['json']),
    (chunk) => {
      nudging.stop();
      into.commit(chunk.length);
      const refusal = guard.check(into.length, () => into.head());
      // A short read that filled its view met the buffer's end, not a drained socket.
      const caughtUp = chunk.length < CAUGHT_UP_BELOW && chunk.length < offered;
      if (refusal === undefined && onBytes !== undefined && caughtUp) {
        try {
          onBytes(into.bytes());
        } catch (error) {
          // Thrown here, it would leave the socket's read callback: an uncaught exception, and the next read landing
          // where this one did. The fetch throws it instead, as a scan of the whole reply would have.
          thrown = { error };
          return 'onBytes threw';
        }
      }
      return refusal;
    },
    () => {
      const view = into.space();
      offered = view.length;
      return view;
    },
  );
  const timer = setTimeout(
    () => exchange.abort(new Error(`ndsctl.sock json took longer than ${timeoutMs} ms`)),
    timeoutMs,
  );
  const end = await exchange.end;
  nudging.stop();
  clearTimeout(timer);
  if (thrown !== undefined) throw thrown.error;
  switch (end.kind) {
    case 'end':
      return { ok: true, bytes: into.bytes() };
    case 'aborted':
      return { ok: false, problem: 'timeout', message: end.reason.message };
    case 'refused':
      return { ok: false, problem: 'failed', message: end.why };
    case 'error': {
      const unreachable = end.error.code === 'ENOENT' || end.error.code === 'ECONNREFUSED';
      return { ok: false, problem: unreachable ? 'unreachable' : 'failed', message: `${path}: ${end.error.message}` };
    }
  }
}
