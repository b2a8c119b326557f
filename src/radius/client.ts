/**
 * The UDP side of sluice as a RADIUS client (accounting and voucher Access-Requests). One socket per address family;
 * Identifiers come from one pool, so at most 256 requests are in flight (fewer: `maxInFlight`). Every attempt is built
 * afresh with a new Identifier (the caller's builder puts an up-to-date Acct-Delay-Time in it); a valid reply to any
 * earlier attempt of the same request also completes it (the server did record that one). Retries back off
 * exponentially; after `retries` retries a server is marked down for `deadTimeMs` and the next one in the list is
 * tried. Replies are accepted only from the server asked, with a matching Identifier, and verified (constant time).
 *
 * The first timeout is `timeoutMs` or, for a server measured slower than that, twice its smoothed round trip (at most
 * 8 × timeoutMs; RFC 6298 estimator; each reply is timed against the attempt whose Identifier it carries, so late
 * replies count too). A retry is a new packet that FreeRADIUS records a second time if it had recorded the first; not
 * retrying a server known to be slow before its usual answer time keeps that from happening whenever it is merely slow.
 */
import type { Socket } from 'node:dgram';
import { createUdpSocket } from './udp.ts';
import { isIPv6 } from 'node:net';
import { Backoff } from '../backoff.ts';
import { SluiceError } from '../errors.ts';
import { decodePacket, verifyResponse, type RadiusPacket } from './packet.ts';

export interface RadiusServer {
  host: string;
  port: number;
  secret: string;
}

export interface RadiusClientOptions {
  servers: readonly RadiusServer[];
  /** First attempt's timeout; doubles per retry up to maxTimeoutMs. Default 2000. */
  timeoutMs?: number;
  maxTimeoutMs?: number;
  /** Retries per server before failing over. Default 2 (3 attempts). */
  retries?: number;
  /** How long a server that did not answer is skipped in favour of the next. Default 30 s. */
  deadTimeMs?: number;
  maxInFlight?: number;
  /** Counted, never thrown: replies that fail to decode or verify. */
  onDrop?: (reason: string) => void;
}

export interface Attempt {
  identifier: number;
  server: RadiusServer;
  /** 0 for the first send of this request. */
  attempt: number;
}

/** Smoothed round trip of one server (RFC 6298 §2), ms. */
interface RoundTrip {
  srtt: number;
  rttvar: number;
}

export interface RadiusClientStats {
  sent: number;
  retransmits: number;
  failovers: number;
  replies: number;
  timeouts: number;
  dropped: number;
  inFlight: number;
  queued: number;
  /** Index in `servers` of the server currently preferred. */
  server: number;
  /** First timeout towards the preferred server now, ms (timeoutMs unless it was measured slower). */
  timeoutMs: number;
  /** Its smoothed round trip, ms; null before its first reply. */
  srttMs: number | null;
}

/** One attempt in flight, by Identifier: where it went and its bytes (needed to verify the reply). */
interface Pending {
  server: RadiusServer;
  index: number;
  sentAt: number;
  packet: Buffer;
  resolve: (p: RadiusPacket) => void;
}

/**
 * One request across its attempts and servers: how each attempt's packet is built, the identifiers used so far (a late
 * reply to any of them completes it), and the one reply they all wait for.
 */
interface RequestInFlight {
  build: (a: Attempt) => Buffer;
  ids: number[];
  replied: Promise<RadiusPacket>;
  resolve: (p: RadiusPacket) => void;
}

export class RadiusClient {
  private readonly timeoutMs: number;
  private readonly maxTimeoutMs: number;
  private readonly retries: number;
  private readonly deadTimeMs: number;
  private readonly maxInFlight: number;
  private readonly sockets = new Map<'udp4' | 'udp6', Promise<Socket>>();
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: Array<() => void> = [];
  private readonly deadUntil: number[];
  private readonly rtt: Array<RoundTrip | null>;
  private nextId = Math.floor(Math.random() * 256);
  private inFlight = 0;
  private closed = false;
  private readonly counters = { sent: 0, retransmits: 0, failovers: 0, replies: 0, timeouts: 0, dropped: 0 };

  constructor(private readonly options: RadiusClientOptions) {
    if (options.servers.length === 0)
      throw new SluiceError('ERR_CONFIG_INVALID', 'RADIUS client needs at least one server');
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.maxTimeoutMs = options.maxTimeoutMs ?? 16_000;
    this.retries = options.retries ?? 2;
    this.deadTimeMs = options.deadTimeMs ?? 30_000;
    this.maxInFlight = Math.min(255, options.maxInFlight ?? 32);
    this.deadUntil = options.servers.map(() => 0);
    this.rtt = options.servers.map(() => null);
  }

  /** The first timeout for server `index`: timeoutMs, or twice its smoothed round trip when that is longer. */
  timeoutFor(index: number): number {
    const r = this.rtt[index];
    if (!r) return this.timeoutMs;
    // At most 8× the configured timeout: a server that slow is more likely failing, and failover should not wait long.
    return Math.min(this.maxTimeoutMs, 8 * this.timeoutMs, Math.max(this.timeoutMs, 2 * r.srtt, r.srtt + 4 * r.rttvar));
  }

  private sample(index: number, ms: number): void {
    const r = this.rtt[index];
    if (!r) {
      this.rtt[index] = { srtt: ms, rttvar: ms / 2 };
      return;
    }
    r.rttvar = 0.75 * r.rttvar + 0.25 * Math.abs(r.srtt - ms);
    r.srtt = 0.875 * r.srtt + 0.125 * ms;
  }

  /**
   * Sends a request built by `build` (called once per attempt) until a verified reply arrives, trying each server in
   * turn starting with the preferred one. Rejects with ERR_UPSTREAM_UNAVAILABLE when every server stayed silent.
   */
  async request(build: (a: Attempt) => Buffer): Promise<RadiusPacket> {
    if (this.closed) throw new SluiceError('ERR_UPSTREAM_UNAVAILABLE', 'RADIUS client is closed');
    await this.slot();
    const ids: number[] = [];
    let resolveReply!: (p: RadiusPacket) => void;
    // One promise for all attempts on all servers: a late reply to an earlier attempt still completes the request.
    const replied = new Promise<RadiusPacket>((r) => {
      resolveReply = r;
    });
    const request: RequestInFlight = { build, ids, replied, resolve: resolveReply };
    try {
      const order = this.serverOrder();
      for (let k = 0; k < order.length; k++) {
        const index = order[k]!;
        if (k > 0) this.counters.failovers++;
        const reply = await this.tryServer(index, request);
        if (reply) {
          this.deadUntil[index] = 0;
          return reply;
        }
        this.deadUntil[index] = Date.now() + this.deadTimeMs;
        if (this.closed) break;
      }
      throw new SluiceError(
        'ERR_UPSTREAM_UNAVAILABLE',
        `no RADIUS server answered (${this.options.servers.map((s) => `${s.host}:${s.port}`).join(', ')})`,
      );
    } finally {
      for (const id of ids) this.pending.delete(id);
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  /** The request's attempts on server `index`, until a reply or the last attempt's timeout. */
  private async tryServer(index: number, request: RequestInFlight): Promise<RadiusPacket | null> {
    const { build, ids, replied, resolve } = request;
    const server = this.options.servers[index]!;
    const socket = await this.socketFor(server.host);
    // Each retransmission waits twice as long as the one before, up to maxTimeoutMs; no jitter: the wait is for this
    // request's reply, and the server's load is bounded by maxInFlight.
    const waits = new Backoff({ minMs: this.timeoutFor(index), maxMs: this.maxTimeoutMs });
    for (let attempt = 0; attempt <= this.retries && !this.closed; attempt++) {
      const identifier = this.allocateId();
      ids.push(identifier);
      const packet = build({ identifier, server, attempt });
      this.pending.set(identifier, { server, index, sentAt: Date.now(), packet, resolve });
      if (attempt > 0) this.counters.retransmits++;
      this.counters.sent++;
      socket.send(packet, server.port, server.host, () => undefined);
      const timeout = waits.next();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<null>((r) => {
        timer = setTimeout(() => r(null), timeout);
      });
      const got = await Promise.race([replied, timedOut]);
      clearTimeout(timer);
      if (got) return got;
      this.counters.timeouts++;
    }
    // The ids stay registered: a late reply to any of these attempts still completes the request.
    return null;
  }

  private allocateId(): number {
    for (let i = 0; i < 256; i++) {
      const id = (this.nextId + i) & 0xff;
      if (!this.pending.has(id)) {
        this.nextId = (id + 1) & 0xff;
        return id;
      }
    }
    // Cannot happen with maxInFlight × attempts ≤ 256 free ids; reuse the oldest rather than stall.
    const id = this.nextId;
    this.nextId = (id + 1) & 0xff;
    return id;
  }

  private serverOrder(): number[] {
    const now = Date.now();
    const all = this.options.servers.map((_, i) => i);
    const alive = all.filter((i) => this.deadUntil[i]! <= now);
    return [...alive, ...all.filter((i) => this.deadUntil[i]! > now)];
  }

  private slot(): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.waiting.push(() => {
        this.inFlight++;
        resolve();
      }),
    );
  }

  private socketFor(host: string): Promise<Socket> {
    const family = isIPv6(host) ? 'udp6' : 'udp4';
    let s = this.sockets.get(family);
    if (!s) {
      s = new Promise<Socket>((resolve, reject) => {
        const socket = createUdpSocket(family);
        socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
        socket.on('error', () => undefined);
        socket.once('listening', () => resolve(socket));
        try {
          socket.bind(0);
        } catch (err) {
          reject(err);
        }
      });
      this.sockets.set(family, s);
    }
    return s;
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    let packet: RadiusPacket;
    try {
      packet = decodePacket(msg);
    } catch (err) {
      this.drop(`undecodable reply from ${address}:${port}: ${(err as Error).message}`);
      return;
    }
    const entry = this.pending.get(packet.identifier);
    if (!entry) {
      this.drop(`reply with unknown Identifier ${packet.identifier} from ${address}:${port}`);
      return;
    }
    if (port !== entry.server.port) {
      this.drop(`reply from ${address}:${port}, expected port ${entry.server.port}`);
      return;
    }
    const v = verifyResponse(packet, entry.packet, entry.server.secret);
    if (!v.ok) {
      this.drop(`reply from ${address}:${port} refused: ${v.reason}`);
      return;
    }
    this.counters.replies++;
    this.sample(entry.index, Date.now() - entry.sentAt);
    entry.resolve(packet);
  }

  private drop(reason: string): void {
    this.counters.dropped++;
    this.options.onDrop?.(reason);
  }

  stats(): RadiusClientStats {
    const now = Date.now();
    const found = this.deadUntil.findIndex((t) => t <= now);
    const preferred = found < 0 ? 0 : found;
    const r = this.rtt[preferred];
    return {
      ...this.counters,
      inFlight: this.inFlight,
      queued: this.waiting.length,
      server: preferred,
      timeoutMs: Math.round(this.timeoutFor(preferred)),
      srttMs: r ? Math.round(r.srtt) : null,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.sockets.values()) {
      const socket = await s.catch(() => undefined);
      socket?.close();
    }
    this.sockets.clear();
  }
}
