/**
 * The embedded ubusd-compatible broker: an AF_UNIX stream server feeding BrokerCore. One frame reader and one
 * output queue (the socket's own buffer) per client; a client that sends a bad header is dropped alone.
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { SluiceError } from '../../errors.ts';
import { UBUS_CLIENT_MAX_TXQ_LEN, UbusFrameReader } from '../codec/index.ts';
import { BrokerCore } from './core.ts';
import { processIdentity } from './identity.ts';
import type { RandomU32 } from './ids.ts';

export interface UbusBrokerOptions {
  socketPath: string;
  /** USER/GROUP put into forwarded calls; default: this process's account (see identity.ts). */
  user?: string;
  group?: string;
  /** Allow `ubus monitor`; default: only when the broker runs as uid 0 and gid 0, as ubusd does. */
  allowMonitor?: boolean;
  /** Replace a socket file nobody is listening on (default true). */
  removeStale?: boolean;
  random?: RandomU32;
  /** One line per notable event (client dropped for a bad frame …). */
  log?: (line: string) => void;
}

interface Conn {
  id: number;
  socket: Socket;
  reader: UbusFrameReader;
}

export class UbusBroker {
  readonly socketPath: string;
  private readonly core: BrokerCore;
  private readonly conns = new Map<number, Conn>();
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly server: Server,
    private readonly opts: UbusBrokerOptions,
  ) {
    this.socketPath = opts.socketPath;
    const id = processIdentity();
    this.core = new BrokerCore({
      send: (clientId, frame) => this.write(clientId, frame),
      user: opts.user ?? id.user,
      group: opts.group ?? id.group,
      allowMonitor: opts.allowMonitor ?? id.root,
      ...(opts.random ? { random: opts.random } : {}),
    });
    server.on('connection', (socket) => this.accept(socket));
  }

  static async listen(opts: UbusBrokerOptions): Promise<UbusBroker> {
    const server = createServer({ allowHalfOpen: false });
    const broker = new UbusBroker(server, opts);
    try {
      await listenOn(server, opts.socketPath);
    } catch (err) {
      const stale =
        (err as NodeJS.ErrnoException).code === 'EADDRINUSE' &&
        opts.removeStale !== false &&
        isSocketFile(opts.socketPath) &&
        !(await isLive(opts.socketPath));
      if (!stale) {
        throw new SluiceError(
          'ERR_UBUS_BROKER_LISTEN',
          `cannot listen on ${opts.socketPath}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      unlinkSync(opts.socketPath);
      await listenOn(server, opts.socketPath).catch((e: unknown) => {
        throw new SluiceError(
          'ERR_UBUS_BROKER_LISTEN',
          `cannot listen on ${opts.socketPath}: ${(e as Error).message}`,
          { cause: e },
        );
      });
    }
    // ubusd creates its socket under umask 0111: any local user may connect, ACLs decide the rest.
    try {
      chmodSync(opts.socketPath, 0o666);
    } catch {
      // not fatal: the owner can still connect
    }
    return broker;
  }

  get clientCount(): number {
    return this.conns.size;
  }

  /** Stops accepting, disconnects every client, removes the socket file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const c of [...this.conns.values()]) this.drop(c, null);
    }).then(() => {
      try {
        if (existsSync(this.socketPath) && lstatSync(this.socketPath).isSocket()) unlinkSync(this.socketPath);
      } catch {
        // already gone
      }
    });
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn: Conn = { id: 0, socket, reader: new UbusFrameReader() };
    socket.on('error', () => this.drop(conn, null)); // EPIPE/ECONNRESET: the peer is gone, nothing to report
    socket.on('close', () => this.drop(conn, null));
    // EOF from the peer: what was already queued for it still goes out (ubusd flushes its tx queue first).
    socket.on('end', () => this.drop(conn, null, true));
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    this.core.connect((id) => {
      conn.id = id;
      this.conns.set(id, conn); // before the core writes HELLO to it
    });
  }

  private onData(conn: Conn, chunk: Buffer): void {
    if (!this.conns.has(conn.id)) return;
    for (const f of conn.reader.push(chunk)) {
      if (!this.conns.has(conn.id)) return;
      try {
        this.core.receive(conn.id, f);
      } catch (err) {
        this.opts.log?.(
          `ubus broker: internal error on client ${hex(conn.id)}, dropping it: ${(err as Error).stack ?? String(err)}`,
        );
        this.drop(conn, null);
        return;
      }
    }
    if (conn.reader.error) this.drop(conn, `invalid message header (${conn.reader.error.message})`);
  }

  private write(clientId: number, frame: Buffer): void {
    const conn = this.conns.get(clientId);
    if (!conn || conn.socket.destroyed) return;
    // ubusd silently drops messages for a client that has more than 1 MiB queued: it has to keep reading.
    if (conn.socket.writableLength + frame.length > UBUS_CLIENT_MAX_TXQ_LEN) return;
    // The frames for one client in one turn leave in one writev: a burst of 32 calls' replies wakes their caller once,
    // not 64 times (a write each, a read each on its side).
    if (conn.socket.writableCorked === 0) {
      conn.socket.cork();
      process.nextTick(() => conn.socket.uncork());
    }
    conn.socket.write(frame);
  }

  private drop(conn: Conn, reason: string | null, flush = false): void {
    const close = (): void => {
      if (flush) conn.socket.end();
      else conn.socket.destroy();
    };
    if (!this.conns.has(conn.id)) {
      close();
      return;
    }
    this.conns.delete(conn.id);
    if (reason) this.opts.log?.(`ubus broker: dropping client ${hex(conn.id)}: ${reason}`);
    close();
    this.core.disconnect(conn.id);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function listenOn(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function isSocketFile(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Whether something answers on an existing socket file (then it is not stale and must not be removed). */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
