/**
 * The outbox's records (outbox.ts), pure: a record of the storage log format (src/storage/record-log.ts: length,
 * CRC-32, header, payload) with a 20-byte header of the outbox's own, and how a batch of payloads is numbered. On
 * flash:
 *
 *   offset  size  field
 *   0       4     payload length (u32 LE)                         } the storage frame
 *   4       4     CRC-32 of bytes 8 … end (u32 LE)                }
 *   8       8     sequence number (u64 LE; < 2^53 in practice)
 *   16      1     flags: bit 0 = durable (never dropped to make room)
 *   17      1     type: the consumer's own tag (e.g. which MQTT topic), opaque here
 *   18      2     reserved, 0
 *   20      8     appended at, ms since the epoch (f64 LE)
 *   28      n     payload
 */
import { SluiceError } from '../errors.ts';
import { FRAME_BYTES, MAX_RECORD_PAYLOAD, scanRecords, sealRecord } from '../storage/index.ts';
import type { Payload } from './outbox-types.ts';

const OUTBOX_HEADER_BYTES = 20;
export const RECORD_HEADER_BYTES = FRAME_BYTES + OUTBOX_HEADER_BYTES;
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
  buf.writeUInt32LE(r.seq >>> 0, 8);
  buf.writeUInt32LE(Math.floor(r.seq / 0x100000000), 12);
  buf.writeUInt8(r.durable ? FLAG_DURABLE : 0, 16);
  buf.writeUInt8(r.type & 0xff, 17);
  buf.writeUInt16LE(0, 18);
  buf.writeDoubleLE(r.at, 20);
  return sealRecord(buf, r.payload);
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
  const scan = scanRecords(data, OUTBOX_HEADER_BYTES);
  const records: Array<OutboxRecord & { bytes: number }> = [];
  let lastSeq = afterSeq;
  for (const r of scan.records) {
    const seq = Number(r.header.readBigUInt64LE(0));
    if (!Number.isSafeInteger(seq) || seq <= lastSeq) return { ok: false, records, end: r.offset, reason: 'corrupt' };
    lastSeq = seq;
    records.push({
      seq,
      durable: (r.header.readUInt8(8) & FLAG_DURABLE) !== 0,
      type: r.header.readUInt8(9),
      at: r.header.readDoubleLE(12),
      payload: Uint8Array.prototype.slice.call(r.payload),
      bytes: r.bytes,
    });
  }
  return scan.problem === null
    ? { ok: true, records, end: scan.end }
    : { ok: false, records, end: scan.end, reason: scan.problem };
}

/**
 * The records a batch of payloads becomes: consecutive numbers from `next.seq`, each payload that is a function told
 * its number and the durable record's before it, each checked against the bounds (one too large refuses the batch
 * before anything is written: ERR_OUTBOX_RECORD_TOO_LARGE).
 */
export function numberRecords(
  payloads: readonly Payload[],
  next: { seq: number; lastDurable: number; durable: boolean; type: number; at: number },
  maxBytes: number,
): OutboxRecord[] {
  const { durable, type, at } = next;
  const records: OutboxRecord[] = [];
  let prevDurable = next.lastDurable;
  for (let i = 0; i < payloads.length; i++) {
    const payload = payloads[i]!;
    const seq = next.seq + i;
    const bytes = typeof payload === 'function' ? payload(seq, prevDurable) : payload;
    if (durable) prevDurable = seq;
    if (bytes.length > MAX_RECORD_PAYLOAD || bytes.length + RECORD_HEADER_BYTES > maxBytes) {
      throw new SluiceError(
        'ERR_OUTBOX_RECORD_TOO_LARGE',
        `an outbox record of ${bytes.length} bytes exceeds the store's bound`,
      );
    }
    records.push({ seq, durable, type, at, payload: bytes });
  }
  return records;
}
