/**
 * The CRC-framed JSON-line log, for logs whose records are JSON objects (the session journal and its snapshot), pure:
 * `<crc32 of the JSON, 8 lowercase hex> <JSON>\n`, one record per line. Readable with `cut -c10- | jq`; the CRC tells a
 * torn or bit-rotted line from a good one; what a record holds is the user's (a `decode` that says why it refuses one).
 *
 * It is kept beside the length-framed format (record-log.ts) rather than folded into it because its terminator tells
 * a complete record from an unfinished one: a user that acknowledges an append only once its `\n` is on flash knows
 * that a complete line failing its CRC is corruption (kept as evidence), never a torn write, which a length-framed
 * last record with a bad CRC cannot tell apart. Two kinds of damage, told apart by what the bytes look like, not by
 * where they are:
 * - a torn append: the bytes after the last `\n` look like the start of a record (`crc32hex {…` without control
 *   characters). Cutting it loses nothing promised.
 * - corruption: a complete line that fails its CRC or `decode` (a bit flip in the last record is corruption too: it
 *   was acknowledged), or a tail that cannot be the start of a record (zeros, garbage: a zero-filled file is not a
 *   torn write). A damaged line may hide whole records (a lost `\n` joins two lines, a zeroed block swallows the
 *   newlines around it): the reader resynchronises on the record framing — every `<8 hex> {` inside the damaged bytes
 *   is tried as the start of a record, ending at the next such start or the line's end — and keeps every record whose
 *   CRC and decode pass.
 */
import { crc32 } from './crc32.ts';

export type JsonDecoded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** One record of `json` (a JSON object's text, which JSON.stringify never breaks with a raw newline). */
export function encodeJsonLine(json: string): string {
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/**
 * Decodes one line (without its `\n`): the frame, the CRC, the JSON, then `decode`; returns the reason instead of
 * throwing.
 */
export function decodeJsonLine<T>(line: string, decode: (value: unknown) => JsonDecoded<T>): JsonDecoded<T> {
  if (line.length < 10 || line[8] !== ' ' || !/^[0-9a-f]{8}$/.test(line.slice(0, 8)))
    return { ok: false, reason: 'bad frame' };
  const json = line.slice(9);
  if (crc32(json) !== parseInt(line.slice(0, 8), 16)) return { ok: false, reason: 'checksum mismatch' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return { ok: false, reason: 'bad JSON' };
  }
  return decode(parsed);
}

export interface ReadProblem {
  /** Byte offset of the damaged line (or tail) in the file. */
  offset: number;
  /** Its length in bytes, the newline included. */
  length: number;
  reason: string;
  /** Records found inside it by resynchronising on the framing (kept). */
  recovered: number;
}

export interface JsonLogRead<T> {
  lines: T[];
  /** Damaged complete lines and a tail that is not a torn append (skipped, except records recovered inside them). */
  corrupt: ReadProblem[];
  /** Bytes in damaged regions that no recovered record accounts for. */
  lostBytes: number;
  /** Length of the file up to and including its last `\n` (where a torn tail is cut). */
  goodLength: number;
  /** Bytes of a torn append after goodLength (0 when the tail is damage instead, or there is none). */
  tornBytes: number;
}

const HEX = new Uint8Array(256);
for (const c of '0123456789abcdef') HEX[c.charCodeAt(0)] = 1;
const SPACE = 0x20;
const BRACE = 0x7b;

/** Whether buf[at…] starts like a record: 8 lowercase hex digits, a space, `{`. */
function frameAt(buf: Buffer, at: number, end: number): boolean {
  if (at + 10 > end || buf[at + 8] !== SPACE || buf[at + 9] !== BRACE) return false;
  for (let i = at; i < at + 8; i++) if (HEX[buf[i]!] !== 1) return false;
  return true;
}

/** Whether the tail could be an unfinished encoded line: a hex prefix, then a space and JSON text (no controls). */
function looksTorn(tail: Buffer): boolean {
  let i = 0;
  while (i < tail.length && i < 8 && HEX[tail[i]!] === 1) i++;
  if (i === tail.length) return true;
  if (i < 8 || tail[8] !== SPACE) return false;
  if (tail.length > 9 && tail[9] !== BRACE) return false;
  for (let j = 9; j < tail.length; j++) if (tail[j]! < 0x20 || tail[j] === 0x7f) return false;
  return true;
}

/** How many later frame starts a record may span (a `<hex> {` inside a string value is not a record start). */
const MAX_SPAN = 8;

/** Records found inside the damaged bytes [start, end) by their framing, in file order, and the bytes they cover. */
function resync<T>(
  buf: Buffer,
  start: number,
  end: number,
  decode: (value: unknown) => JsonDecoded<T>,
): { lines: T[]; covered: number } {
  const starts: number[] = [];
  for (let at = buf.indexOf(BRACE, start); at !== -1 && at < end; at = buf.indexOf(BRACE, at + 1)) {
    if (at - 9 >= start && frameAt(buf, at - 9, end)) starts.push(at - 9);
  }
  const lines: T[] = [];
  let covered = 0;
  let cursor = start;
  for (let i = 0; i < starts.length; i++) {
    const from = starts[i]!;
    if (from < cursor) continue;
    // Bounded work on a file whose newlines are all gone: the line's end only once it is within MAX_SPAN starts.
    const next = starts.slice(i + 1, i + 1 + MAX_SPAN);
    const ends = next.length < MAX_SPAN ? [...next, end] : next;
    for (const to of ends) {
      // A record ends with its object's `}`: a byte that replaced the newline (or junk before the next start) is not
      // part of it.
      const close = buf.lastIndexOf(0x7d, to - 1);
      if (close < from) continue;
      const decoded = decodeJsonLine(buf.toString('utf8', from, close + 1), decode);
      if (decoded.ok) {
        lines.push(decoded.value);
        covered += close + 1 - from;
        cursor = to;
        break;
      }
    }
  }
  return { lines, covered };
}

/** Reads a whole log file back: every record `decode` accepts, and what to do with damage. */
export function readJsonLog<T>(buf: Buffer, decode: (value: unknown) => JsonDecoded<T>): JsonLogRead<T> {
  const lines: T[] = [];
  const corrupt: ReadProblem[] = [];
  let lostBytes = 0;
  let start = 0;
  const damaged = (from: number, to: number, length: number, reason: string): void => {
    const found = resync(buf, from, to, decode);
    lines.push(...found.lines);
    corrupt.push({ offset: from, length, reason, recovered: found.lines.length });
    lostBytes += length - found.covered;
  };
  for (let nl = buf.indexOf(0x0a, start); nl !== -1; start = nl + 1, nl = buf.indexOf(0x0a, start)) {
    const decoded = decodeJsonLine(buf.toString('utf8', start, nl), decode);
    if (decoded.ok) lines.push(decoded.value);
    else damaged(start, nl, nl + 1 - start, decoded.reason);
  }
  const goodLength = start;
  let tornBytes = buf.length - goodLength;
  if (tornBytes > 0 && !looksTorn(buf.subarray(goodLength))) {
    damaged(goodLength, buf.length, tornBytes, 'damaged tail (not an unfinished record)');
    tornBytes = 0;
  }
  return { lines, corrupt, lostBytes, goodLength, tornBytes };
}
