/** Raw-frame test peers for the embedded broker: no dependency on the ubus client library. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UbusBroker } from '../../src/ubus/broker/index.ts';
import type { UbusBrokerOptions } from '../../src/ubus/broker/index.ts';
import { MsgType, UbusFrameReader, decodeMessage, encodeMessage } from '../../src/ubus/codec/index.ts';
import type { UbusAttrs, UbusMessage } from '../../src/ubus/codec/index.ts';

/** Upper bound so a missing frame fails the test instead of hanging it (not a timing assertion). */
export const WAIT_MS = 3000;

export interface TestBroker {
  broker: UbusBroker;
  path: string;
  stop: () => Promise<void>;
}

export async function startBroker(opts: Partial<UbusBrokerOptions> = {}): Promise<TestBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ubus-'));
  const path = join(dir, 'ubus.sock');
  const broker = await UbusBroker.listen({
    socketPath: path,
    user: 'root',
    group: 'root',
    allowMonitor: true,
    ...opts,
  });
  return {
    broker,
    path,
    stop: async () => {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export class RawClient {
  readonly socket: Socket;
  private readonly reader = new UbusFrameReader();
  private readonly frames: Buffer[] = [];
  private waiter: (() => void) | null = null;
  ended = false;
  /** Client id from HELLO (after `hello()`). */
  id = 0;
  private seq = 0;

  private constructor(path: string) {
    this.socket = createConnection(path);
    this.socket.on('data', (chunk: Buffer) => {
      this.frames.push(...this.reader.push(chunk));
      this.wake();
    });
    const end = (): void => {
      this.ended = true;
      this.wake();
    };
    this.socket.on('end', end);
    this.socket.on('close', end);
    this.socket.on('error', end);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Connects and reads HELLO. */
  static async connect(path: string): Promise<RawClient> {
    const c = new RawClient(path);
    const hello = await c.next();
    if (hello.type !== MsgType.HELLO) throw new Error(`expected HELLO, got type ${hello.type}`);
    c.id = hello.peer;
    return c;
  }

  /** Connects without consuming HELLO (for the capture replay, which checks it). */
  static open(path: string): RawClient {
    return new RawClient(path);
  }

  nextSeq(): number {
    this.seq = (this.seq % 0xffff) + 1;
    return this.seq;
  }

  sendRaw(buf: Uint8Array): void {
    this.socket.write(buf);
  }

  send(type: number, attrs: UbusAttrs, peer = 0, seq = this.nextSeq()): number {
    this.socket.write(encodeMessage({ type, seq, peer, attrs }));
    return seq;
  }

  async nextFrame(timeoutMs = WAIT_MS): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.ended) throw new Error(`connection ${this.id.toString(16)} closed while waiting for a frame`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame on connection ${this.id.toString(16)} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.frames.shift()!;
  }

  async next(timeoutMs = WAIT_MS): Promise<UbusMessage> {
    return decodeMessage(await this.nextFrame(timeoutMs));
  }

  /** Frames received so far and not yet read. */
  get pending(): number {
    return this.frames.length;
  }

  /** Sends a request and collects replies up to and including its STATUS (other frames are kept for later). */
  async request(type: number, attrs: UbusAttrs, peer = 0): Promise<{ data: UbusMessage[]; status: UbusMessage }> {
    const seq = this.send(type, attrs, peer);
    const data: UbusMessage[] = [];
    const others: Buffer[] = [];
    for (;;) {
      const f = await this.nextFrame();
      const m = decodeMessage(f);
      if (m.seq === seq && m.type === MsgType.DATA) data.push(m);
      else if (m.seq === seq && m.type === MsgType.STATUS) {
        this.frames.unshift(...others);
        return { data, status: m };
      } else others.push(f);
    }
  }

  /** Resolves once the broker has closed this connection. */
  async waitClosed(timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('connection was not closed by the broker');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
