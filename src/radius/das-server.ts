/**
 * The Disconnect/CoA listener (RFC 5176), the UDP side only: what a request does is the caller's `answer`. Accepts
 * requests only from configured clients, verified with their secret (Request Authenticator and, if present,
 * Message-Authenticator); anything else is dropped silently and counted, never answered and never thrown. A
 * retransmission (same source address, port, Identifier and authenticator within `duplicateWindowMs`) gets the first
 * answer again, not a second action; one still being worked on is dropped (its answer will go out). Requests whose
 * Event-Timestamp is further than 5 min from now are dropped (RFC 5176 §3.5 replay protection).
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:dgram';
import { createUdpSocket } from './udp.ts';
import { isIPv6 } from 'node:net';
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { DasAnswer } from './das.ts';
import { AttributeReader, CODE, decodePacket, encodeResponse, verifyRequest, type RadiusPacket } from './packet.ts';

export interface DasClient {
  /** Source address (IPv4 or IPv6, as the socket reports it). */
  address: string;
  secret: string;
}

export interface DasServerOptions {
  port: number;
  /** Bind address; '' = all (IPv6 socket with IPv4 mapped when available). */
  host?: string;
  clients: readonly DasClient[];
  duplicateWindowMs?: number;
  eventWindowS?: number;
  /**
   * What a verified, fresh, first-seen request does; its answer is signed and sent (and replayed to retransmissions).
   */
  answer: (request: RadiusPacket) => Promise<DasAnswer>;
  log?: Log;
}

export interface DasStats {
  received: number;
  acked: number;
  naked: number;
  duplicates: number;
  droppedUnknownClient: number;
  droppedBadAuthenticator: number;
  droppedMalformed: number;
  droppedStale: number;
  droppedUnsupportedCode: number;
  /** Answers the socket refused to send (logged). */
  sendFailures: number;
}

interface Cached {
  at: number;
  key: string;
  reply: Buffer | null;
}

const MAX_CACHE = 4096;

/**
 * `::ffff:10.0.0.1` → `10.0.0.1`, so IPv4 clients match on a dual-stack socket. For matching only: the reply goes to
 * the address as the socket reported it (an IPv6 socket refuses a plain IPv4 destination with EINVAL).
 */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class DasServer {
  private socket: Socket | undefined;
  private readonly cache = new Map<string, Cached>();
  private readonly counters: DasStats = {
    received: 0,
    acked: 0,
    naked: 0,
    duplicates: 0,
    droppedUnknownClient: 0,
    droppedBadAuthenticator: 0,
    droppedMalformed: 0,
    droppedStale: 0,
    droppedUnsupportedCode: 0,
    sendFailures: 0,
  };
  private readonly secrets: Map<string, string>;

  private constructor(private readonly options: DasServerOptions) {
    this.secrets = new Map(options.clients.map((c) => [plainAddress(c.address), c.secret]));
  }

  static async start(options: DasServerOptions): Promise<DasServer> {
    const server = new DasServer(options);
    await server.listen();
    return server;
  }

  get port(): number {
    return this.socket?.address().port ?? 0;
  }

  private async listen(): Promise<void> {
    const host = this.options.host ?? '';
    try {
      await this.bind(host !== '' && !isIPv6(host) ? 'udp4' : 'udp6', host === '' ? '::' : host);
    } catch (err) {
      // A router built without IPv6: listen on IPv4 only.
      if (host !== '' || (err as { cause?: { code?: string } }).cause?.code !== 'EAFNOSUPPORT') throw err;
      await this.bind('udp4', '0.0.0.0');
    }
  }

  private async bind(type: 'udp4' | 'udp6', host: string): Promise<void> {
    const socket = createUdpSocket({ type, reuseAddr: false });
    socket.on('message', (msg, rinfo) => {
      void this.onMessage(msg, rinfo.address, rinfo.port).catch((err: unknown) => {
        this.options.log?.warn('radius das: request failed', {
          reason: err instanceof Error ? err.message : String(err),
        });
      });
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) =>
        reject(
          new SluiceError(
            'ERR_RADIUS_DAS_LISTEN',
            `cannot listen on UDP ${host}:${this.options.port}: ${err.message}`,
            { cause: err },
          ),
        ),
      );
      socket.bind(this.options.port, host, () => resolve());
    });
    socket.removeAllListeners('error');
    socket.on('error', (err) => this.options.log?.warn('radius das: socket error', { reason: err.message }));
    this.socket = socket;
  }

  /** `from`: the sender as the socket reports it (where the reply goes). */
  private async onMessage(msg: Buffer, from: string, port: number): Promise<void> {
    this.counters.received++;
    const address = plainAddress(from);
    const secret = this.secrets.get(address);
    if (secret === undefined) {
      this.counters.droppedUnknownClient++;
      return;
    }
    let packet: RadiusPacket;
    try {
      packet = decodePacket(msg);
    } catch {
      this.counters.droppedMalformed++;
      return;
    }
    if (packet.code !== CODE['Disconnect-Request'] && packet.code !== CODE['CoA-Request']) {
      this.counters.droppedUnsupportedCode++;
      return;
    }
    const now = Date.now();
    const key = `${address}|${port}|${packet.identifier}`;
    // The whole packet: a retransmission is byte-identical; anything else with the same Identifier is a new request.
    const fingerprint = createHash('sha1').update(packet.raw).digest('base64');
    const seen = this.cache.get(key);
    if (seen && seen.key === fingerprint && now - seen.at <= (this.options.duplicateWindowMs ?? 5000)) {
      this.counters.duplicates++;
      if (seen.reply) this.reply(seen.reply, from, port);
      return;
    }
    if (!verifyRequest(packet, secret).ok) {
      this.counters.droppedBadAuthenticator++;
      return;
    }
    let eventTs: number | undefined;
    try {
      eventTs = new AttributeReader(packet.attributes).integer('Event-Timestamp');
    } catch {
      this.counters.droppedMalformed++;
      return;
    }
    if (eventTs !== undefined && Math.abs(now / 1000 - eventTs) > (this.options.eventWindowS ?? 300)) {
      this.counters.droppedStale++;
      return;
    }
    const entry: Cached = { at: now, key: fingerprint, reply: null };
    this.remember(key, entry);
    const answer = await this.options.answer(packet);
    const hasMa = packet.attributes.some((a) => a.vendor === 0 && a.type === 80);
    const reply = encodeResponse({
      code: answer.code,
      request: packet,
      attributes: answer.attributes,
      secret,
      messageAuthenticator: hasMa,
    });
    entry.reply = reply;
    if (answer.code.endsWith('ACK')) this.counters.acked++;
    else this.counters.naked++;
    this.options.log?.info(`radius ${answer.code}`, {
      from: address,
      outcome: answer.outcome,
      sessions: answer.sessions.join(',') || undefined,
      reason: answer.reason,
    });
    this.reply(reply, from, port);
  }

  /** Sends an answer; a failure is counted and logged (the requester sees no reply and retransmits). */
  private reply(packet: Buffer, to: string, port: number): void {
    const socket = this.socket;
    if (!socket) return;
    socket.send(packet, port, to, (err) => {
      if (!err) return;
      this.counters.sendFailures++;
      this.options.log?.warn('radius das: cannot send the reply', { to: plainAddress(to), port, reason: err.message });
    });
  }

  private remember(key: string, entry: Cached): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
    if (this.cache.size > MAX_CACHE) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  stats(): DasStats {
    return { ...this.counters };
  }

  close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }
}
