/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial 0xEDB88320), of a string's UTF-8 bytes or of bytes. Node's zlib.crc32
 * (≥ 20.15 / 22.2) is ~40× faster than the table loop on a tick's 850 KB of outbox usage reports, but loading zlib
 * costs an idle router ~1.5 MB of RSS for the journal's few short records: short inputs take the 1 KiB table, and zlib
 * is loaded (synchronously, once) on the first long one. OpenWrt feeds may ship a 20.x without zlib.crc32: the table
 * serves those throughout. Same polynomial, same values.
 */
import { createRequire } from 'node:module';

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The table loop, kept callable so tests check it against zlib's. */
export function crc32Table(input: string | Uint8Array, value = 0): number {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  let crc = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Below this many bytes (a journal record, a short outbox line) the table loop is as quick as loading zlib is not. */
export const CRC32_ZLIB_FROM_BYTES = 4096;

type ZlibCrc32 = (data: string | Uint8Array, value?: number) => number;
/** undefined: not looked for yet; null: this Node has none. */
let zlibCrc32: ZlibCrc32 | null | undefined;

function loadZlibCrc32(): ZlibCrc32 | null {
  const zlib = createRequire(import.meta.url)('node:zlib') as { crc32?: ZlibCrc32 };
  return zlib.crc32 ?? null;
}

/** `value`: the CRC of the bytes before `input`, to continue it (as zlib's crc32(data, value)). */
export function crc32(input: string | Uint8Array, value = 0): number {
  // A string's UTF-8 length is at least its length: a short string is short in bytes as well, or near enough.
  if (input.length < CRC32_ZLIB_FROM_BYTES) return crc32Table(input, value);
  if (zlibCrc32 === undefined) zlibCrc32 = loadZlibCrc32();
  return zlibCrc32 === null ? crc32Table(input, value) : zlibCrc32(input, value) >>> 0;
}
