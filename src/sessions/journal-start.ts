/**
 * What the journal store reads at start (journal.ts), before it changes anything: the snapshot and every journal
 * replayed into one state, the damage found and read past, what a start must repair (copies of the damaged files, a
 * torn tail cut, stale journals deleted, a rewrite), and the loss the files show, if any (the store refuses to start
 * with ERR_STATE_LOST unless --reset-state). It only reads: a start refused for lost state must leave the files as they
 * were.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SluiceError } from '../errors.ts';
import { decodeJsonLine, readJsonLog } from '../storage/index.ts';
import type { JsonLogRead } from '../storage/index.ts';
import { decodeNumbered, encodeLine } from './journal-codec.ts';
import type { JournalLine, NumberedLine } from './journal-codec.ts';
import { applyRecord, emptyState } from './store.ts';
import { copySession } from './model.ts';
import type { StoreRecord, StoreState } from './store.ts';

export const SNAPSHOT = 'sessions.snapshot';
const JOURNAL_RE = /^sessions\.(\d+)\.journal$/;
export const journalName = (gen: number): string => `sessions.${gen}.journal`;

/** What a start read, and what it must change before the store opens. */
export interface StartRead {
  state: StoreState;
  /** The generation to append to, the last record number in its journal, that journal's size and records. */
  gen: number;
  /** The generation the snapshot says (the newest journal's when it has no header or is missing). */
  snapshotGen: number;
  seq: number;
  journalBytes: number;
  journalRecords: number;
  /** Damage read past (JournalStats.damageAtStart). */
  damage: { regions: number; lostBytes: number; headers: number };
  warnings: SluiceError[];
  /** The journal generations found, and those older than the snapshot (deleted once the current one is open). */
  journals: number[];
  stale: number[];
  /** Journals whose unfinished last record is cut at `length`. */
  torn: Array<{ name: string; length: number }>;
  /** Files with damage: a copy of each is kept before anything rewrites or deletes them. */
  damaged: Set<string>;
  /** The state is compacted at once (damage rewritten away, or the files disagreed). */
  needsRewrite: boolean;
  /** Nothing at all was there. */
  firstStart: boolean;
  snapshotFound: boolean;
  /** Why the files show sessions or records that cannot be read back; null when nothing is lost. */
  lost: string | null;
  unknownSessions: number;
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function applySnapshotLine(state: StoreState, line: JournalLine): void {
  // A snapshot's session is not a sale: its payments are in the snapshot's sales book already.
  if (line.t === 'open') state.sessions.set(line.session.id, copySession(line.session));
  else if (line.t === 'ref') state.refs.set(line.key, line.at);
  else if (line.t === 'sales') {
    state.sales.since = line.since;
    state.sales.load(line.sales);
  }
}

/** The session ids a record refers to without opening them (records of a session the reader never saw mean loss). */
function idsOf(record: StoreRecord): string[] {
  switch (record.t) {
    case 'open':
      return [];
    case 'usage':
      return record.entries.map((e) => e[0]);
    default:
      return [record.id];
  }
}

/** One warning per damaged file: where, how many bytes are unreadable, how many records resync found inside. */
function damageWarning(file: string, read: JsonLogRead<NumberedLine>): SluiceError {
  const recovered = read.corrupt.reduce((n, p) => n + p.recovered, 0);
  return new SluiceError(
    'ERR_JOURNAL_CORRUPT',
    `${file}: ${read.corrupt.length} damaged region(s), ${read.lostBytes} byte(s) unreadable, ` +
      `${recovered} record(s) recovered inside them by their framing; the records around them were kept`,
    {
      details: { file, lostBytes: read.lostBytes, recovered, problems: read.corrupt.slice(0, 20) },
    },
  );
}

/**
 * Whether a journal whose header did not decode still has it in place, damaged (a bit flip) rather than gone (emptied,
 * or cut from the front): its first lines are complete lines that fail their check, and the first one that reads is
 * numbered as the next after them (record 1 after the header's line alone). Each damaged line then holds exactly one
 * numbered line (the header, and the records after it that are counted as damage anyway), so nothing is missing
 * between the header's place and the records read. A lone damaged line with nothing after it is a header-only
 * journal (the state just after a compaction) when it is no longer than a header can be; a damaged line that hides
 * whole records (a lost newline) is not counted as a header.
 */
function headerDamagedInPlace(buf: Buffer): boolean {
  let damagedLines = 0;
  let start = 0;
  for (let nl = buf.indexOf(0x0a); nl !== -1; start = nl + 1, nl = buf.indexOf(0x0a, start)) {
    const decoded = decodeJsonLine(buf.toString('utf8', start, nl), decodeNumbered);
    if (decoded.ok) return damagedLines > 0 && decoded.value.n === damagedLines;
    // A line that hides records is not one line's damage: the count above would not hold.
    if (readJsonLog(buf.subarray(start, nl + 1), decodeNumbered).lines.length > 0) return false;
    damagedLines++;
  }
  return damagedLines === 1 && start === buf.length && start <= MAX_HEADER_LINE;
}

/** The longest a journal header's line can be: its JSON with a 16-digit gen and time, the CRC and the newline. */
const MAX_HEADER_LINE = 128;

/**
 * Whether a snapshot whose header did not decode has it in place, damaged (a bit flip): its first line is complete, no
 * longer than a header can be, hides no record, and the line after it (if any) is a record that reads.
 */
/** The longest a snapshot header's line can be: a journal header's, `headed` and a 16-digit `body` more. */
const MAX_SNAPSHOT_HEADER_LINE = MAX_HEADER_LINE + 40;

function snapshotHeaderDamagedInPlace(buf: Buffer): boolean {
  const nl = buf.indexOf(0x0a);
  if (nl === -1 || nl + 1 > MAX_SNAPSHOT_HEADER_LINE) return false;
  if (readJsonLog(buf.subarray(0, nl + 1), decodeNumbered).lines.length > 0) return false;
  const next = buf.indexOf(0x0a, nl + 1);
  if (next === -1) return nl + 1 === buf.length;
  const line = decodeJsonLine(buf.toString('utf8', nl + 1, next), decodeNumbered);
  return line.ok && line.value.line.t !== 'snap';
}

/**
 * Reads the snapshot and journals of `dir` (the store's lock held) without changing them. Synchronous: it runs once,
 * at the daemon's start before anything is served (the store loads once), where a thread-pool hop per open, stat, read
 * and close of each file only costs CPU (the damage suites reopen thousands of times).
 */
export function readStart(dir: string): StartRead {
  const state = emptyState();
  let current = 0;
  let seq = 0;
  let journalBytes = 0;
  let journalRecords = 0;
  const damage = { regions: 0, lostBytes: 0, headers: 0 };
  const countDamage = (read: JsonLogRead<NumberedLine>): void => {
    damage.regions += read.corrupt.length;
    damage.lostBytes += read.lostBytes;
  };
  const warnings: SluiceError[] = [];
  // Read everything before touching anything: a start refused for lost state must leave the files as they were.
  const journals = readdirSync(dir)
    .flatMap((name) => {
      const m = JOURNAL_RE.exec(name);
      return m ? [Number(m[1])] : [];
    })
    .sort((a, b) => a - b);

  /** Files with damage: a copy of each is kept before anything rewrites or deletes them. */
  const damaged = new Set<string>();
  /** Why the snapshot cannot be trusted to hold the state (most sessions live only there after a compaction). */
  let snapshotLost: string | null = null;
  let snapshotText: Buffer | null = null;
  try {
    snapshotText = readFileSync(join(dir, SNAPSHOT));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code === 'EISDIR') {
      // Something else in its place (a directory): the sessions it held are lost, as if it were missing.
      snapshotLost = `${SNAPSHOT} cannot be read (${code})`;
      damaged.add(SNAPSHOT);
    } else if (!isMissing(err))
      throw new SluiceError('ERR_JOURNAL_READ', `cannot read ${SNAPSHOT}: ${String(err)}`, { cause: err });
  }
  // Nothing at all: a first start. (Once started, the snapshot is never deleted: only replaced by rename.)
  const firstStart = snapshotText === null && snapshotLost === null && journals.length === 0;
  /** The snapshot says its journal begins with a header (so a journal without one lost its records). */
  let headed = false;
  let needsRewrite = false;
  if (snapshotText) {
    const read = readJsonLog(snapshotText, decodeNumbered);
    const header = read.lines[0]?.line;
    if (header?.t === 'snap') {
      current = header.gen;
      headed = header.headed === true;
      // Written whole by rename, a snapshot is never torn: shorter than its header says, or (one written before the
      // header said its length) ending in an unfinished line, it was cut, and the sessions after the cut are lost.
      // (The header's line re-encoded: its own newline may be the damage, so it is not searched for.)
      const bodyFound = snapshotText.length - Buffer.byteLength(encodeLine(header));
      if (header.body !== undefined ? bodyFound < header.body : read.tornBytes > 0)
        snapshotLost = `${SNAPSHOT} was cut (${bodyFound} of ${header.body ?? '?'} bytes after its header)`;
    } else if (snapshotHeaderDamagedInPlace(snapshotText)) {
      // A bit flip in the header line alone: the sessions after it all read. Its journal is the newest one (a
      // compaction starts the new journal before the old one goes); a missing journal is a loss, as with any header.
      current = journals.at(-1) ?? 0;
      headed = true;
    } else {
      // Without its header we cannot tell which journal continues this snapshot: take the newest one.
      current = journals.at(-1) ?? 0;
      snapshotLost = `${SNAPSHOT} (${snapshotText.length} bytes) has no valid header`;
    }
    if (snapshotLost) damaged.add(SNAPSHOT);
    if (read.corrupt.length > 0 || read.tornBytes > 0) {
      needsRewrite = true;
      damaged.add(SNAPSHOT);
      warnings.push(damageWarning(SNAPSHOT, read));
      countDamage(read);
    }
    for (const { line } of read.lines) applySnapshotLine(state, line);
  } else if ((journals.at(-1) ?? 0) > 0) {
    // Journal generations start at 0 and move on only by writing a snapshot: a later one without it lost the snapshot.
    snapshotLost = `${SNAPSHOT} is missing while journal generation ${journals.at(-1)} exists`;
  }
  if (snapshotLost) {
    needsRewrite = true;
    warnings.push(new SluiceError('ERR_JOURNAL_CORRUPT', `${snapshotLost}; continuing with journal ${current}`));
  }
  // State written before journals had headers (no `headed` snapshot) runs as it did until its next compaction, which
  // writes today's form: a rewrite at start would also prune by retention, which is not a start's business.

  const snapshotGen = current;
  const stale = journals.filter((gen) => gen < current);
  const torn: Array<{ name: string; length: number }> = [];
  let unreadable: string | null = null;
  const unknown = new Set<string>();
  /** Journals whose header line was read. */
  const withHeader = new Set<number>();
  for (const gen of journals) {
    if (gen < current) continue;
    const name = journalName(gen);
    if (gen > current && !snapshotLost) {
      needsRewrite = true;
      warnings.push(
        new SluiceError(
          'ERR_JOURNAL_CORRUPT',
          `${name} is newer than ${SNAPSHOT} (gen ${current}); replaying it anyway`,
        ),
      );
    }
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(dir, name));
    } catch (err) {
      // A journal that cannot be read as a file (a directory in its place): lost, as if missing.
      unreadable ??= `${name} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
      damaged.add(name);
      continue;
    }
    const read = readJsonLog(bytes, decodeNumbered);
    let last = -1;
    let duplicatesHere = 0;
    for (const { line, n } of read.lines) {
      if (n !== undefined) {
        // Numbers only go up in a journal: one already passed is a copy of a record applied before.
        if (n <= last) {
          duplicatesHere++;
          continue;
        }
        last = n;
      }
      if (line.t === 'jnl') {
        if (line.gen === gen) withHeader.add(gen);
        continue;
      }
      if (line.t === 'snap' || line.t === 'ref' || line.t === 'sales') continue;
      for (const id of idsOf(line)) if (!state.sessions.has(id)) unknown.add(id);
      applyRecord(state, line);
    }
    if (duplicatesHere > 0) {
      needsRewrite = true;
      damaged.add(name);
      warnings.push(
        new SluiceError(
          'ERR_JOURNAL_CORRUPT',
          `${name}: ${duplicatesHere} duplicated record(s) skipped (each applied once)`,
          {
            details: { file: name, duplicates: duplicatesHere },
          },
        ),
      );
    }
    if (read.tornBytes > 0) {
      // A power cut mid-append: that record was never acknowledged, so dropping it loses nothing promised.
      torn.push({ name, length: read.goodLength });
      warnings.push(
        new SluiceError('ERR_JOURNAL_TORN', `${name}: cut ${read.tornBytes} byte(s) of an unfinished last record`, {
          details: { file: name, offset: read.goodLength },
        }),
      );
    }
    journalBytes = read.goodLength;
    journalRecords = read.lines.length;
    seq = Math.max(last, 0);
    if (read.corrupt.length > 0) {
      needsRewrite = true;
      damaged.add(name);
      warnings.push(damageWarning(name, read));
      countDamage(read);
      // A header hit by a bit flip is damage like any record's, not the loss of the journal: the
      // records after it are all there, and the rewrite below gives the journal a good header again.
      if (!withHeader.has(gen) && headerDamagedInPlace(bytes)) {
        withHeader.add(gen);
        damage.headers++;
        warnings.push(
          new SluiceError(
            'ERR_JOURNAL_CORRUPT',
            `${name}: its header is damaged in place; every record after it was read`,
            {
              details: { file: name, header: 'damaged' },
            },
          ),
        );
      }
    }
  }
  current = Math.max(current, journals.at(-1) ?? 0);
  if (unknown.size > 0) {
    warnings.push(
      new SluiceError(
        'ERR_JOURNAL_CORRUPT',
        `the journal has records of ${unknown.size} session(s) that could not be read back (lost with the ` +
          'damaged records)',
        {
          details: { sessions: [...unknown].slice(0, 20) },
        },
      ),
    );
  }
  // A snapshot whose journal is gone, empty or headless: every record since that snapshot (all of them at generation
  // 0) is lost — unless the previous journal is still there, which is a compaction that died between writing the
  // snapshot and starting its journal (the snapshot then holds everything).
  let journalLost: string | null = null;
  if (headed && !snapshotLost && !withHeader.has(snapshotGen) && !journals.includes(snapshotGen - 1)) {
    const name = journalName(snapshotGen);
    journalLost = journals.includes(snapshotGen)
      ? `${name} has lost its header (emptied or cut: the records since the last compaction are gone)`
      : `${name} is missing (the records since the last compaction are gone)`;
    if (journals.includes(snapshotGen)) damaged.add(name);
  }

  // Refuse to start empty-handed, without the snapshot, or without the journal, when the files show there were
  // sessions or records: a start would rewrite them away, and every paying client would lose their session (or a
  // top-up). The operator decides (--reset-state).
  const lost =
    snapshotLost ??
    unreadable ??
    journalLost ??
    (state.sessions.size === 0 && (damaged.size > 0 || unknown.size > 0)
      ? 'no session could be read back from damaged state files ' +
        `(${[...damaged].join(', ') || `records of ${unknown.size} unknown session(s)`})`
      : null);
  return {
    state,
    gen: current,
    snapshotGen,
    seq,
    journalBytes,
    journalRecords,
    damage,
    warnings,
    journals,
    stale,
    torn,
    damaged,
    needsRewrite,
    firstStart,
    snapshotFound: snapshotText !== null,
    lost,
    unknownSessions: unknown.size,
  };
}
