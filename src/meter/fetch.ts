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
  /** Larger output is refused (a 100k-client openNDS snapshot is ~75 MB). */
  maxBytes?: number;
}

const NDSCTL_BUSY = 4;
const NDSCTL_CANNOT_CONNECT = 3;

export async function fetchSnapshot(source: SnapshotSource, options: FetchOptions): Promise<FetchOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  const maxBytes = options.maxBytes ?? 512 * 1024 * 1024;
  if (source.kind === 'socket') {
    const r = await readSocket(source.path, options.timeoutMs, maxBytes);
    return { ...r, attempts: 1 };
  }
  for (let attempt = 1; ; attempt++) {
    const r = await runCommand(source.argv, Math.max(1, deadline - Date.now()), maxBytes);
    if (r.ok || r.problem !== 'busy') return { ...r, attempts: attempt };
    const pause = options.busyRetryMs ?? 100;
    if (Date.now() + pause >= deadline) return { ...r, problem: 'timeout', message: `ndsctl busy until the deadline (${attempt} attempts)`, attempts: attempt };
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

type Attempt = { ok: true; bytes: Buffer } | { ok: false; problem: FetchProblem; message: string };

function runCommand(argv: readonly string[], timeoutMs: number, maxBytes: number): Promise<Attempt> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (file === undefined) { resolve({ ok: false, problem: 'failed', message: 'empty ndsctl command' }); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (r: Attempt): void => { if (!settled) { settled = true; clearTimeout(timer); resolve(r); } };
    const child = spawn(file, [...args, 'json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ ok: false, problem: 'timeout', message: `ndsctl json took longer than ${timeoutMs} ms` });
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) { child.kill('SIGKILL'); finish({ ok: false, problem: 'failed', message: `output over ${maxBytes} bytes` }); return; }
      chunks.push(chunk);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      finish({ ok: false, problem: err.code === 'ENOENT' ? 'unreachable' : 'failed', message: `cannot run ${file}: ${err.message}` });
    });
    child.on('close', (code, signal) => {
      if (code === 0) finish({ ok: true, bytes: withSentinel(chunks, size) });
      else if (code === NDSCTL_BUSY) finish({ ok: false, problem: 'busy', message: 'ndsctl is busy (exit 4)' });
      else if (code === NDSCTL_CANNOT_CONNECT) finish({ ok: false, problem: 'unreachable', message: 'ndsctl cannot reach the portal (exit 3)' });
      else finish({ ok: false, problem: 'failed', message: `ndsctl json exited with ${code ?? signal}` });
    });
  });
}

function readSocket(path: string, timeoutMs: number, maxBytes: number): Promise<Attempt> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const socket = createConnection({ path });
    const finish = (r: Attempt): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, problem: 'timeout', message: `ndsctl.sock json took longer than ${timeoutMs} ms` }), timeoutMs);
    socket.on('connect', () => socket.write('json\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) { finish({ ok: false, problem: 'failed', message: `output over ${maxBytes} bytes` }); return; }
      chunks.push(chunk);
    });
    socket.on('end', () => finish({ ok: true, bytes: withSentinel(chunks, size) }));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const unreachable = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      finish({ ok: false, problem: unreachable ? 'unreachable' : 'failed', message: `${path}: ${err.message}` });
    });
  });
}

/** The scanner wants a '"' right after the snapshot (so its string loop needs no bounds check): leave room for it. */
function withSentinel(chunks: Buffer[], size: number): Buffer {
  const all = Buffer.concat(chunks, size + 1);
  all[size] = 0x22;
  return all.subarray(0, size);
}
