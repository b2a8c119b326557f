/**
 * One ubus socket: framing, HELLO, sequence numbers and the table of pending requests. It knows nothing about
 * objects or reconnecting (client.ts does); INVOKE/NOTIFY/UNSUBSCRIBE frames are handed to `onObjectMessage`.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import {
  MsgType,
  Status,
  UBUS_MAX_MSGLEN,
  UbusCodecError,
  UbusFrameReader,
  decodeHeader,
  decodeMessage,
  encodeMessage,
} from './codec/index.ts';
import type { UbusAttrs, UbusMessage } from './codec/index.ts';
import { systemTimers, type Timers } from '../time.ts';
import { UbusError, closedError, disconnectedError, timeoutError } from './errors.ts';

export type ConnectionState = 'connecting' | 'ready' | 'closing' | 'closed';

export interface RequestResult {
  status: number;
  /** Every DATA frame that arrived before the STATUS, in order. */
  replies: UbusMessage[];
  /** The STATUS message itself (NOTIFY replies carry SUBSCRIBERS there). */
  final: UbusMessage;
}

interface Pending {
  what: string;
  replies: UbusMessage[];
  timer: unknown;
  resolve(result: RequestResult): void;
  reject(err: Error): void;
}

export interface ConnectionOptions {
  socketPath: string;
  /** How long to wait for the socket and ubusd's HELLO. */
  connectTimeoutMs: number;
  timers?: Timers;
  /** INVOKE, NOTIFY and UNSUBSCRIBE addressed to objects this connection owns. */
  onObjectMessage(msg: UbusMessage, conn: UbusConnection): void;
  /** Called once when the socket is gone, whoever closed it; `err` is set for unexpected ends. */
  onClose(conn: UbusConnection, err: Error | undefined): void;
  /** Non-fatal oddities (an undecodable frame, an unmatched reply is NOT reported: it is normal after a timeout). */
  onWarning?(err: Error): void;
}

/** Keys requests like libubus: (seq, peer). seq < 2^16 and peer < 2^32, so the product stays exact. */
const pendingKey = (seq: number, peer: number): number => seq * 0x1_0000_0000 + peer;

export class UbusConnection {
  state: ConnectionState = 'connecting';
  clientId = 0;
  private readonly socket: Socket;
  private readonly reader = new UbusFrameReader();
  private readonly pending = new Map<number, Pending>();
  private readonly timers: Timers;
  private seq = 0;
  private outbox: Buffer[] = [];
  private drained: (() => void) | undefined;
  private closeError: Error | undefined;

  private constructor(
    private readonly opts: ConnectionOptions,
    socket: Socket,
  ) {
    this.socket = socket;
    this.timers = opts.timers ?? systemTimers;
  }

  /** Connects and waits for HELLO; rejects with ERR_UBUS_CONNECT. */
  static open(opts: ConnectionOptions): Promise<UbusConnection> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ path: opts.socketPath });
      const conn = new UbusConnection(opts, socket);
      const timers = conn.timers;
      let settled = false;
      const fail = (message: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        timers.clearTimeout(timer);
        socket.destroy();
        conn.state = 'closed';
        reject(
          new UbusError(
            'ERR_UBUS_CONNECT',
            Status.CONNECTION_FAILED,
            `ubus ${opts.socketPath}: ${message}`,
            cause === undefined ? {} : { cause },
          ),
        );
      };
      const timer = timers.setTimeout(() => fail(`no HELLO within ${opts.connectTimeoutMs} ms`), opts.connectTimeoutMs);
      socket.on('error', (err) => {
        if (!settled) fail(err.message, err);
        else conn.closeError ??= err;
      });
      socket.on('close', () => {
        if (!settled) fail('connection closed before HELLO');
        else conn.onSocketClosed();
      });
      socket.on('data', (chunk: Buffer) => {
        // A bad header (length < 4 or > 1 MiB) cannot be resynchronised: deliver what came before it, then close.
        for (const frame of conn.reader.push(chunk)) {
          if (settled) {
            conn.onFrame(frame);
            continue;
          }
          const hdr = decodeHeader(frame);
          if (hdr.type !== MsgType.HELLO) return fail(`expected HELLO, got message type ${hdr.type}`);
          settled = true;
          timers.clearTimeout(timer);
          conn.clientId = hdr.peer;
          conn.state = 'ready';
          resolve(conn);
        }
        const bad = conn.reader.error;
        if (bad !== null) {
          if (!settled) return fail('bad frame header', bad);
          conn.destroy(
            new UbusError(
              'ERR_UBUS_PROTOCOL',
              Status.INVALID_ARGUMENT,
              `ubus: bad frame from ubusd, closing: ${bad.message}`,
              { cause: bad },
            ),
          );
        }
      });
    });
  }

  /** Sends a request and collects DATA until the STATUS with the same (seq, peer). timeoutMs 0 = wait forever. */
  request(type: number, peer: number, attrs: UbusAttrs, timeoutMs: number, what: string): Promise<RequestResult> {
    if (this.state !== 'ready') return Promise.reject(this.notReadyError(what));
    const seq = this.nextSeq(peer);
    let frame: Buffer;
    try {
      frame = this.encode({ type, seq, peer, attrs }, what);
    } catch (err) {
      return Promise.reject(err);
    }
    const key = pendingKey(seq, peer);
    return new Promise<RequestResult>((resolve, reject) => {
      const entry: Pending = { what, replies: [], timer: undefined, resolve, reject };
      if (timeoutMs > 0) {
        entry.timer = this.timers.setTimeout(() => {
          // The key is forgotten, so a late DATA/STATUS for it is dropped like any unmatched reply.
          this.settle(key);
          reject(timeoutError(what, timeoutMs));
        }, timeoutMs);
      }
      this.pending.set(key, entry);
      this.write(frame);
    });
  }

  /** Sends a message that expects no reply (replies to INVOKE, NOTIFY with NO_REPLY). */
  post(msg: UbusMessage, what: string): void {
    if (this.state !== 'ready' && this.state !== 'closing') throw this.notReadyError(what);
    this.write(this.encode(msg, what));
  }

  /** Writes already-encoded frames in one go (a reply's DATA frames and its STATUS). */
  writeFrames(frames: Buffer[]): void {
    if (this.state !== 'ready' && this.state !== 'closing') return;
    for (const f of frames) this.write(f);
  }

  /**
   * Frames written in the same tick leave in one write(): with many calls in flight this saves a syscall (and a
   * wake-up of ubusd) per frame. Order is kept, so replies and requests interleave exactly as issued.
   */
  private write(frame: Buffer): void {
    this.outbox.push(frame);
    if (this.outbox.length === 1) process.nextTick(this.flush);
  }

  private readonly flush = (): void => {
    const frames = this.outbox;
    this.outbox = [];
    if (frames.length === 0 || this.socket.destroyed) return;
    this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  };

  /** Takes the next u16 seq for `peer`, skipping 0 and any (seq, peer) still pending. */
  nextSeq(peer: number): number {
    for (let i = 0; i < 0xffff; i++) {
      this.seq = this.seq >= 0xffff ? 1 : this.seq + 1;
      if (!this.pending.has(pendingKey(this.seq, peer))) return this.seq;
    }
    throw new UbusError('ERR_UBUS_PROTOCOL', Status.NO_MEMORY, 'ubus: 65535 requests already pending for one peer');
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Stops new requests, waits for the pending ones (each is bounded by its own timeout), then ends the socket. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') {
      this.state = 'closing';
      if (this.pending.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.flush();
      this.socket.end();
    }
    if (!this.socket.closed) await new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
  }

  /** Aborts: pending requests fail with `err` (default ERR_UBUS_CLOSED) and the socket is destroyed. */
  destroy(err?: Error): void {
    if (this.state === 'closed') return;
    this.closeError ??= err;
    this.failAll(err ?? closedError('request'));
    this.state = 'closed';
    this.drained?.();
    this.socket.destroy();
  }

  /** Encodes; the codec refuses more than UBUS_MAX_MSGLEN, as libubus does before sending (→ INVALID_ARGUMENT). */
  encode(msg: UbusMessage, what: string): Buffer {
    try {
      return encodeMessage(msg);
    } catch (err) {
      // The oversized case gets its own code; anything else stays ERR_UBUS_CODEC.
      if (err instanceof UbusCodecError && err.details?.limit === UBUS_MAX_MSGLEN) {
        throw new UbusError('ERR_UBUS_MSG_TOO_LARGE', Status.INVALID_ARGUMENT, `${what}: ${err.message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  private onFrame(frame: Buffer): void {
    let msg: UbusMessage;
    try {
      msg = decodeMessage(frame);
    } catch (err) {
      // The framing is intact, so the stream stays usable; only this frame is lost (libubus ignores bad attrs too).
      this.opts.onWarning?.(err as Error);
      return;
    }
    switch (msg.type) {
      case MsgType.DATA: {
        this.pending.get(pendingKey(msg.seq, msg.peer))?.replies.push(msg);
        return;
      }
      case MsgType.STATUS: {
        const key = pendingKey(msg.seq, msg.peer);
        const entry = this.settle(key);
        // libubus treats a STATUS without the STATUS attr as INVALID_ARGUMENT.
        entry?.resolve({ status: msg.attrs.status ?? Status.INVALID_ARGUMENT, replies: entry.replies, final: msg });
        return;
      }
      case MsgType.INVOKE:
      case MsgType.NOTIFY:
      case MsgType.UNSUBSCRIBE:
        this.opts.onObjectMessage(msg, this);
        return;
      default:
        // HELLO again, MONITOR copies, unknown types: nothing we asked for.
        return;
    }
  }

  private settle(key: number): Pending | undefined {
    const entry = this.pending.get(key);
    if (entry === undefined) return undefined;
    this.pending.delete(key);
    if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
    if (this.pending.size === 0) this.drained?.();
    return entry;
  }

  private failAll(err: Error): void {
    for (const [key, entry] of [...this.pending]) {
      this.settle(key);
      entry.reject(
        err instanceof UbusError && err.code === 'ERR_UBUS_CLOSED'
          ? closedError(entry.what)
          : disconnectedError(entry.what, err),
      );
    }
  }

  private onSocketClosed(): void {
    const unexpected = this.state !== 'closing' && this.state !== 'closed';
    const err = unexpected
      ? (this.closeError ?? new UbusError('ERR_UBUS_DISCONNECTED', Status.CONNECTION_FAILED, 'ubus: connection lost'))
      : this.closeError;
    this.failAll(err ?? closedError('request'));
    this.state = 'closed';
    this.drained?.();
    this.opts.onClose(this, unexpected ? err : this.closeError);
  }

  private notReadyError(what: string): UbusError {
    return this.state === 'closing' ? closedError(what) : disconnectedError(what);
  }
}
