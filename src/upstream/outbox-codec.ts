/**
 * The on-flash record format of the outbox (outbox.ts), pure. A segment file is a run of records:
 *
 *   offset  size  field
 *   0       4     payload length (u32 LE)
 *   4       4     CRC-32 of bytes 8 … end (u32 LE): a torn or bit-flipped record never passes as good
 *   8       8     sequence number (u64 LE; < 2^53 in practice)
 *   16      1     flags: bit 0 = durable (never dropped to make room)
 *   17      1     type: the consumer's own tag (e.g. which MQTT topic), opaque here
 *   18      2     reserved, 0
 *   20      8     appended at, ms since the epoch (f64 LE)
 *   28      n     payload
 */
import * as zlib from 'node:zlib';
import { crc32 as crc32Js } from '../storage/crc32.ts';

// zlib.crc32 (Node ≥ 20.15 / 22.2) is ~40× faster than the table loop on a tick's 850 KB of usage reports; the
// JS loop stays for older Node builds on OpenWrt feeds. Same polynomial, same values.
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
/** CRC-32 of `data`, continuing from `value` (the CRC of the bytes before it) when given. */
const crc32 = (data: Uint8Array, value = 0): number => (zlibCrc32 ? zlibCrc32(data, value) >>> 0 : crc32Js(data, value));

export const RECORD_HEADER_BYTES = 28;
/** A record longer than this is refused (and a length field beyond it marks a torn or corrupt record). */
export const MAX_RECORD_PAYLOAD = 16 * 1024 * 1024;
const FLAG_DURABLE = 1;

export interface OutboxRecord {
  seq: number;
  durable: boolean;
  type: number;
  /** ms since the epoch when it was appended. */
  at: number;
  payload: Uint8Array;
}

/**
 * A record's header, its CRC covering the payload too: the outbox writes it and the payload with one writev, so a
 * tick's 850 KB of usage reports are not copied into a fresh buffer first (that copy cost ~1 ms a tick at 10k rows).
 */
export function encodeHeader(r: OutboxRecord): Buffer {
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  buf.writeUInt32LE(r.payload.length, 0);
  buf.writeUInt32LE(r.seq >>> 0, 8);
  buf.writeUInt32LE(Math.floor(r.seq / 0x100000000), 12);
  buf.writeUInt8(r.durable ? FLAG_DURABLE : 0, 16);
  buf.writeUInt8(r.type & 0xff, 17);
  buf.writeUInt16LE(0, 18);
  buf.writeDoubleLE(r.at, 20);
  buf.writeUInt32LE(crc32(r.payload, crc32(buf.subarray(8))), 4);
  return buf;
}

/** Header and payload in one buffer (what encodeHeader + the payload put on flash). */
export function encodeRecord(r: OutboxRecord): Buffer {
  return Buffer.concat([encodeHeader(r), r.payload]);
}

export type DecodeResult =
  | { ok: true; records: Array<OutboxRecord & { bytes: number }>; end: number }
  /** `end`: bytes of good records before the problem; `reason` says what was found there. */
  | { ok: false; records: Array<OutboxRecord & { bytes: number }>; end: number; reason: 'torn' | 'corrupt' };

/**
 * Decodes every whole record of a segment. A record cut short at the end is `torn` (a crash mid-append); a complete
 * record with a bad CRC, an impossible length or a sequence number not above the previous one is `corrupt`.
 * Payloads are copies, so the file buffer can be released.
 */
export function decodeSegment(data: Uint8Array, afterSeq = 0): DecodeResult {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const records: Array<OutboxRecord & { bytes: number }> = [];
  let offset = 0;
  let lastSeq = afterSeq;
  while (offset < buf.length) {
    if (buf.length - offset < RECORD_HEADER_BYTES) return { ok: false, records, end: offset, reason: 'torn' };
    const length = buf.readUInt32LE(offset);
    if (length > MAX_RECORD_PAYLOAD) return { ok: false, records, end: offset, reason: 'corrupt' };
    const total = RECORD_HEADER_BYTES + length;
    if (buf.length - offset < total) return { ok: false, records, end: offset, reason: 'torn' };
    const body = buf.subarray(offset + 8, offset + total);
    if (crc32(body) !== buf.readUInt32LE(offset + 4)) {
      // A bad CRC on the very last record is what a torn write that happened to fill the length looks like.
      return { ok: false, records, end: offset, reason: offset + total === buf.length ? 'torn' : 'corrupt' };
    }
    const seq = Number(buf.readBigUInt64LE(offset + 8));
    if (!Number.isSafeInteger(seq) || seq <= lastSeq) return { ok: false, records, end: offset, reason: 'corrupt' };
    lastSeq = seq;
    records.push({
      seq,
      durable: (buf.readUInt8(offset + 16) & FLAG_DURABLE) !== 0,
      type: buf.readUInt8(offset + 17),
      at: buf.readDoubleLE(offset + 20),
      payload: Uint8Array.prototype.slice.call(buf, offset + RECORD_HEADER_BYTES, offset + total),
      bytes: total,
    });
    offset += total;
  }
  return { ok: true, records, end: offset };
}
