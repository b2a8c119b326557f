/**
 * One HTTP listener for a door on the LAN (the LAN endpoint, TollGate's door): the server with its header and request
 * timeouts, the connection bounds (connection-limits.ts), the bind with its one error, and a move to another address
 * while it runs (rebind). A move binds the new socket first: a bind that fails leaves the old one listening and throws
 * ERR_HTTP_LISTEN; one that succeeds stops the old socket accepting, lets the requests it carries finish (their
 * answers close their connections) and closes it once they have. The door's state (sessions, rate buckets) lives in
 * the door, never here: a move touches none of it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SluiceError } from '../errors.ts';
import { limitConnections, MAX_PER_IP, MAX_TOTAL } from './connection-limits.ts';

/** Keep-alive requests per connection, so no client holds one connection for ever. */
const MAX_REQUESTS_PER_SOCKET = 100;
/** How often Node checks the header and request timeouts (its default, 30 s, would let a slow client stay 40 s). */
const TIMEOUT_CHECK_MS = 1000;

export interface ListenerOptions {
  host: string;
  port: number;
  /** Every request; the door answers its own failures. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** A connection's headers within this. */
  headersTimeoutMs: number;
  /** A connection's whole request within this. */
  requestTimeoutMs: number;
  /** Node's bound on a request's headers; absent: Node's default. */
  maxHeaderBytes?: number;
  /** Open connections in total; default MAX_TOTAL. */
  maxConnections?: number;
  /** Open connections per client IP; default MAX_PER_IP. */
  maxConnectionsPerIp?: number;
}

/** A socket retired by a move, with the answers it still carries. */
interface Draining {
  server: Server;
  closed: Promise<void>;
}

export class Listener {
  private server: Server;
  private address: { host: string; port: number };
  private readonly draining = new Set<Draining>();
  /** Per client IP, across the socket in use and the ones draining: a move never doubles a client's share. */
  private readonly perIp = new Map<string, number>();
  /** Answers not yet written, per server: a retired server's are told to close their connections. */
  private readonly open = new Map<Server, Set<ServerResponse>>();

  private constructor(private readonly options: ListenerOptions) {
    this.server = this.serverFor();
    this.address = { host: options.host, port: options.port };
  }

  /** Binds `options.host:options.port`; ERR_HTTP_LISTEN when it cannot (in use, no such address). */
  static async open(options: ListenerOptions): Promise<Listener> {
    const listener = new Listener(options);
    await bind(listener.server, options.host, options.port);
    return listener;
  }

  /** The port bound (the one asked for, or the one the kernel chose for port 0). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The address asked for in force: the one opened with, or the last move's. */
  get host(): string {
    return this.address.host;
  }

  /** Whether `host:port` is what the listener is bound to now (port 0 asks for any, so never the same). */
  bound(host: string, port: number): boolean {
    return host === this.address.host && port !== 0 && port === this.address.port;
  }

  /**
   * Moves to `host:port`: the new socket bound first (ERR_HTTP_LISTEN leaves everything as it was), then the old one
   * stops accepting and closes once its requests are answered.
   */
  async rebind(host: string, port: number): Promise<void> {
    const next = this.serverFor();
    try {
      await bind(next, host, port);
    } catch (err) {
      this.open.delete(next);
      throw err;
    }
    const old = this.server;
    this.server = next;
    this.address = { host, port };
    this.retire(old);
  }

  /** Stops listening and ends every connection, the draining ones' too. */
  async close(): Promise<void> {
    const servers = [this.server, ...[...this.draining].map((d) => d.server)];
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
    this.draining.clear();
    this.open.clear();
  }

  /** The sockets still draining after a move (stats, tests). */
  get drainingCount(): number {
    return this.draining.size;
  }

  private serverFor(): Server {
    const { options } = this;
    const answers = new Set<ServerResponse>();
    const server = createServer(
      {
        ...(options.maxHeaderBytes !== undefined && { maxHeaderSize: options.maxHeaderBytes }),
        requestTimeout: options.requestTimeoutMs,
        headersTimeout: options.headersTimeoutMs,
        connectionsCheckingInterval: TIMEOUT_CHECK_MS,
      },
      (req, res) => {
        // A request that arrives on a retired socket (keep-alive) is answered, and its connection closed after.
        if (!this.open.has(server)) res.shouldKeepAlive = false;
        answers.add(res);
        res.once('close', () => answers.delete(res));
        options.handler(req, res);
      },
    );
    this.open.set(server, answers);
    server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
    limitConnections(
      server,
      { total: options.maxConnections ?? MAX_TOTAL, perIp: options.maxConnectionsPerIp ?? MAX_PER_IP },
      this.perIp,
    );
    return server;
  }

  /** The old socket after a move: no new connections; idle ones closed now, busy ones after their answer. */
  private retire(server: Server): void {
    for (const res of this.open.get(server) ?? []) if (!res.headersSent) res.shouldKeepAlive = false;
    this.open.delete(server);
    const entry: Draining = {
      server,
      closed: new Promise<void>((resolve) => server.close(() => resolve())),
    };
    this.draining.add(entry);
    void entry.closed.then(() => this.draining.delete(entry));
    server.closeIdleConnections();
  }
}

function bind(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void =>
      reject(new SluiceError('ERR_HTTP_LISTEN', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}
