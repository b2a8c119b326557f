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
  private failed: UbusCodecError | null = null;

  /** Bytes of an unfinished frame currently held. */
  get pendingBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /**
   * Feeds bytes; returns the frames completed by them (each a complete message: header + blob). Throws
   * UbusCodecError on an invalid header; the reader then stays failed (the stream cannot be resynchronised),
   * and the frames completed before the bad header are in `err.details.frames`.
   */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failed) throw this.failed;
    const frames: Buffer[] = [];
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
          this.failed = err instanceof UbusCodecError ? new UbusCodecError(err.message, { ...err.details, frames }) : (err as UbusCodecError);
          throw this.failed;
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
