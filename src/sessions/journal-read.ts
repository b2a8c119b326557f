/**
 * Reading a journal or snapshot file back: splits complete lines, decodes each, and says what to do with damage.
 * A last line without its `\n` was never acknowledged (appends resolve only after the newline is fsynced), so it is a
 * torn write to cut off; a bad line that is followed by good ones is corruption to report.
 */
import { decodeLine } from './journal-codec.ts';
import type { JournalLine } from './journal-codec.ts';

export interface ReadProblem {
  /** Byte offset of the bad line in the file. */
  offset: number;
  reason: string;
}

export interface ReadResult {
  lines: JournalLine[];
  /** Bad complete lines (skipped). */
  corrupt: ReadProblem[];
  /** Length of the file up to and including the last good line (the torn tail and bad trailing lines cut off). */
  goodLength: number;
  /** Bytes after goodLength: a torn tail, or bad last lines (a power cut can leave a whole garbled block). */
  tornBytes: number;
}

export function readJournalText(buf: Buffer): ReadResult {
  const lines: JournalLine[] = [];
  const bad: ReadProblem[] = [];
  let goodLength = 0;
  let start = 0;
  for (let nl = buf.indexOf(0x0a, start); nl !== -1; start = nl + 1, nl = buf.indexOf(0x0a, start)) {
    const decoded = decodeLine(buf.toString('utf8', start, nl));
    if (decoded.ok) {
      lines.push(decoded.value);
      goodLength = nl + 1;
    } else {
      bad.push({ offset: start, reason: decoded.reason });
    }
  }
  // Bad lines after the last good one belong to the torn tail, not to the middle.
  const corrupt = bad.filter((p) => p.offset < goodLength);
  return { lines, corrupt, goodLength, tornBytes: buf.length - goodLength };
}
