/**
 * Stream framing for ubus over SOCK_STREAM: collects the 12-byte header, validates it (ubusd's rule: blob length
 * >= 4 and padded <= 1 MiB) before allocating the body, then hands out whole frames. Pure; the socket feeds it.
 */
import { UBUS_HEADER_LEN } from './constants.ts';
import { UbusCodecError } from './error.ts';
import { decodeHeader } from './message.ts';

export class UbusFrameReader {
  private readonly header = Buffer.alloc(UBUS_HEADER_LEN);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  /**
   * Set by the first invalid header. The stream cannot be resynchronised after it, so the reader stays failed:
   * later pushes return nothing and the owner is expected to close the connection.
   */
  error: UbusCodecError | null = null;

  /** Bytes of an unfinished frame currently held. */
  get pendingBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /**
   * Feeds bytes; returns the frames completed by them (each a complete message: header + blob). On an invalid
   * header it returns the frames completed before it and sets `error`; it never throws for bad input.
   */
  push(chunk: Uint8Array): Buffer[] {
    const frames: Buffer[] = [];
    if (this.error) return frames;
    let off = 0;
    while (off < chunk.length) {
      if (this.body === null) {
        const take = Math.min(UBUS_HEADER_LEN - this.headerFill, chunk.length - off);
        this.header.set(chunk.subarray(off, off + take), this.headerFill);
        this.headerFill += take;
        off += take;
        if (this.headerFill < UBUS_HEADER_LEN) break;
        let total: number;
        try {
          total = decodeHeader(this.header).totalLength;
        } catch (err) {
          if (!(err instanceof UbusCodecError)) throw err;
          this.error = err;
          return frames;
        }
        this.body = Buffer.allocUnsafe(total);
        this.header.copy(this.body, 0);
        this.bodyFill = UBUS_HEADER_LEN;
      } else {
        const take = Math.min(this.body.length - this.bodyFill, chunk.length - off);
        this.body.set(chunk.subarray(off, off + take), this.bodyFill);
        this.bodyFill += take;
        off += take;
      }
      if (this.body !== null && this.bodyFill === this.body.length) {
        frames.push(this.body);
        this.body = null;
        this.bodyFill = 0;
        this.headerFill = 0;
      }
    }
    return frames;
  }
}
