/**
 * The length-framed append-only record format, for logs of opaque bytes (the upstream outbox's segments, the line
 * log), pure. The session journal, whose records are JSON, uses the CRC-framed JSON-line log instead (json-log.ts says
 * why). A log file is a run of records, each
 *
 *   offset  size  field
 *   0       4     payload length n (u32 LE)
 *   4       4     CRC-32 of bytes 8 … 8+h+n (u32 LE): a torn or bit-flipped record never passes as good
 *   8       h     a fixed-size header of the log's own (the outbox: 20 bytes of sequence number, flags, time;
 *                 the line log: none), h being the same for every record of a log
 *   8+h     n     payload
 *
 * The length counts the payload alone so that the outbox's segments, written in this layout before it was shared,
 * read unchanged. A log is appended to and never rewritten in place: damage can only be a torn tail (a crash
 * mid-append) or corruption, and scanRecords tells them apart.
 */
import { crc32 } from './crc32.ts';

/** Length and CRC, before the log's own header. */
export const FRAME_BYTES = 8;
/** A record longer than this is refused (and a length field beyond it marks a corrupt record). */
export const MAX_RECORD_PAYLOAD = 16 * 1024 * 1024;

/**
 * Fills in the length and CRC of a record whose first FRAME_BYTES bytes of `head` are left for them, the log's own
 * header after them, and returns `head`. The payload is not copied: a caller writes head and payload with one writev.
 */
export function sealRecord(head: Buffer, payload: Uint8Array): Buffer {
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload, crc32(head.subarray(FRAME_BYTES))), 4);
  return head;
}

/** A whole record of a log without a header of its own (h = 0), in one buffer. */
export function encodeRecord(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_BYTES + payload.length);
  out.set(payload, FRAME_BYTES);
  sealRecord(out.subarray(0, FRAME_BYTES), payload);
  return out;
}

export interface ScannedRecord {
  /** Offset of the record in the file, and its size (frame, header and payload). */
  offset: number;
  bytes: number;
  /** The log's own header and the payload: views into the scanned buffer. */
  header: Buffer;
  payload: Buffer;
}

export interface ScanResult {
  records: ScannedRecord[];
  /** Bytes of good records before the problem (the whole buffer when there is none). */
  end: number;
  /**
   * `torn`: the last record is cut short, or fills the file with a bad CRC (what a crash mid-append leaves; it was
   * never acknowledged, so cutting it loses nothing promised). `corrupt`: an impossible length, or a bad CRC on a
   * record with more bytes after it.
   */
  problem: 'torn' | 'corrupt' | null;
}

/** Scans the records of a log whose own header is `headerBytes` long, up to the first problem. */
export function scanRecords(data: Uint8Array, headerBytes: number): ScanResult {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const records: ScannedRecord[] = [];
  const head = FRAME_BYTES + headerBytes;
  let offset = 0;
  while (offset < buf.length) {
    if (buf.length - offset < head) return { records, end: offset, problem: 'torn' };
    const length = buf.readUInt32LE(offset);
    if (length > MAX_RECORD_PAYLOAD) return { records, end: offset, problem: 'corrupt' };
    const total = head + length;
    if (buf.length - offset < total) return { records, end: offset, problem: 'torn' };
    if (crc32(buf.subarray(offset + FRAME_BYTES, offset + total)) !== buf.readUInt32LE(offset + 4)) {
      return { records, end: offset, problem: offset + total === buf.length ? 'torn' : 'corrupt' };
    }
    records.push({
      offset,
      bytes: total,
      header: buf.subarray(offset + FRAME_BYTES, offset + head),
      payload: buf.subarray(offset + head, offset + total),
    });
    offset += total;
  }
  return { records, end: offset, problem: null };
}
