/**
 * The damage policy of every file sluice keeps, as data: one verdict per kind of file, which each reader declares
 * itself against (a JsonTableFormat's `kind`, the Cashu ledger, the line logs…) and the shared durable-file suite
 * (test/storage/durable-file-suite.ts) asserts harm by harm. docs/operations.md "State files" is this table in words.
 *
 * The harms: a cut (the file ends early, at any byte), a flipped bit, an empty file, a missing file that existed, a
 * directory in its place, an older copy of the file put back. What a kind does with each:
 *   refused       open fails with the owner's code (`details.damaged`): the door the file guards stays closed
 *   refuses-held  open goes on, and every call the lost file may have held is refused (the nonce files)
 *   read-past     the damaged records are skipped (and kept aside), the rest read: the door stays open
 *   new           read as never written
 *   unseen        not told from a good file (the verdict's `why` says why that is accepted)
 * Every damage seen is counted (`damaged_tables` in ubus `stats`, by file name) and logged at error by the door's
 * owner; a copy of the damaged bytes is kept aside (`<file>.damaged-<crc32>`) unless the kind says never (bearer
 * money: a second copy of ecash is a second chance to spend it). A kind `sealed` keeps a seal (seal.ts) that tells a
 * file cut, emptied, deleted or rolled back from a crash's leftovers.
 */

export type Harm = 'cut' | 'flip' | 'empty' | 'deleted' | 'older' | 'directory';
export const HARMS: readonly Harm[] = ['cut', 'flip', 'empty', 'deleted', 'older', 'directory'];

export type Outcome = 'refused' | 'refuses-held' | 'read-past' | 'new' | 'unseen';

export interface FileVerdict {
  /** The files of this kind, as the docs name them. */
  files: string;
  /** What each harm comes to. */
  on: Readonly<Record<Harm, Outcome>>;
  /** Whether the door the file guards fails closed (refuses) or open (serves on) when the file is damaged. */
  door: 'closed' | 'open';
  /** Why that is the right way for this file to fail, and what it does not see. */
  why: string;
  /** Whether a copy of damaged bytes is kept aside for support. */
  copy: boolean;
  /** Where its seal is kept (seal.ts): beside the file, in the state directory, or none. */
  seal: 'beside' | 'state-dir' | 'none';
}

const REFUSED_ALL: Record<Harm, Outcome> = {
  cut: 'refused',
  flip: 'refused',
  empty: 'refused',
  deleted: 'refused',
  older: 'refused',
  directory: 'refused',
};

export const FILE_KINDS = {
  'cashu-ledger': {
    files: '<state_dir>/cashu/ledger.log (seal: <state_dir>/cashu-ledger.seal)',
    on: REFUSED_ALL,
    door: 'closed',
    why:
      'bearer money: a ledger read as holding less loses the ecash it held, and a new empty one forgets it for ' +
      'good. Only a torn record past the seal (an append a crash cut, never acknowledged) is cut; its first record ' +
      'says it was sealed (a ledger without its seal is refused), and it must know every Cashu payment the journal ' +
      'holds',
    copy: false,
    seal: 'state-dir',
  },
  'money-table': {
    files: 'x402.json, upto.json, escrow.json, batch-channels.json, trials.json, radius/sessions.json',
    on: REFUSED_ALL,
    door: 'closed',
    why:
      'each records money taken or owed, a code used, or a payment on its way: read as less, a payment would ' +
      'replay, a ticket sell twice, a debt be forgotten. The method it belongs to is left out until it is mended. ' +
      'Sealed beside (<file>.seal, one more small write per write): the copy from just before the last write is ' +
      'taken for a crash in that write; two writes back or more is refused',
    copy: true,
    seal: 'beside',
  },
  'money-log': {
    files: 'vouchers.log (seal: vouchers.log.seal)',
    on: REFUSED_ALL,
    door: 'closed',
    why:
      'the printed voucher book, a log of batches and uses: read as less, a ticket would sell twice. Each change is ' +
      'one record appended, fsynced and sealed (one small write more), so a sale writes the flash in proportion to ' +
      'itself, not to the book; the book is rewritten whole only when compacted. Only a torn record past the seal ' +
      '(an append a crash cut, never acknowledged) is cut; a log without its seal is refused',
    copy: true,
    seal: 'beside',
  },
  'cashu-outgoing': {
    files: '<state_dir>/cashu/outgoing.json (seal: outgoing.json.seal)',
    on: REFUSED_ALL,
    door: 'closed',
    why:
      'a payout or keyset swap on its way out, with the secrets that finish it after a crash: read as less, a melt ' +
      'is paid twice or its change lost. No copy: it holds what unblinds ecash',
    copy: false,
    seal: 'beside',
  },
  'secret-key': {
    files: 'voucher.key, nostr.key (seal: <file>.seal)',
    on: REFUSED_ALL,
    door: 'closed',
    why:
      'a key that cannot be read back is refused, never replaced: a new one would be a different router to every ' +
      'client (nostr.key: the TollGate door stays off, ERR_NOSTR_KEY) or make every printed code unknown (the ' +
      'voucher method stays off, ERR_VOUCHER_STORE). Written once, then sealed: a key deleted, emptied, cut, ' +
      'flipped or replaced by another after it was made is refused, not made anew (storage/key-file.ts); a key ' +
      'and its seal both gone is a router that never made one. To start afresh, move both aside',
    copy: false,
    seal: 'beside',
  },
  'nonce-file': {
    files: 'pcsync-nonces.json, nonces.json (MQTT commands)',
    on: {
      ...REFUSED_ALL,
      cut: 'refuses-held',
      flip: 'refuses-held',
      empty: 'refuses-held',
      deleted: 'refuses-held',
      older: 'refuses-held',
      directory: 'refuses-held',
    },
    door: 'closed',
    why:
      'a signed call whose nonce was lost could be replayed: every call signed up to the start plus the window is ' +
      'refused, later calls run, so the door closes only for the window the lost file covered',
    copy: true,
    seal: 'beside',
  },
  'marks-log': {
    files: "radius/acked, the sinks' end and payment marks",
    on: { cut: 'read-past', flip: 'read-past', empty: 'new', deleted: 'new', older: 'unseen', directory: 'refused' },
    door: 'open',
    why:
      'a lost mark costs a report sent twice (an Accounting record, an end or a payment the receiver sees again, ' +
      'the payment under a new seq: the fleet keys payments by reference), never money: ' +
      'the sinks also pass what their queue still holds. Marks are appended without a seal: one write each',
    copy: false,
    seal: 'none',
  },
  outbox: {
    files: '<state_dir>/*-outbox/ segments, cursor-*, seq',
    on: { cut: 'read-past', flip: 'read-past', empty: 'new', deleted: 'new', older: 'read-past', directory: 'refused' },
    door: 'open',
    why:
      'reports on their way to an upstream (MQTT, RADIUS, a hook): a damaged record is skipped (a copy kept as ' +
      '.corrupt) and the rest delivered; a lost cursor delivers again (at least once). Money is not decided here: ' +
      'the payments and ends reported are in the session journal. A segment cut short or put back older after a ' +
      'clean stop is told by the seq mark (the newest durable record, exact at a clean close): counted and logged ' +
      '(ERR_OUTBOX_CORRUPT), what is found delivered. After a crash or a power cut no rollback is seen: the mark is ' +
      'written only at open, every 4096 numbers and at a clean stop, and a segment may then rightly end below it (a ' +
      'power cut loses appends not yet fsynced, at most 5 s of them; a segment every consumer acknowledged is ' +
      'deleted up to 30 s before the cursors say so). A segment cut or put back older then loses at most the reports ' +
      "no consumer's cursor had passed (at most what the queue held), unseen. A cursor or the seq mark " +
      'damaged or lost is read as none (a damaged cursor counted; everything stored delivered again; numbering ' +
      'resumes past every record and cursor found). No seal: one more write per report would double the flash ' +
      'writes of every tick',
    copy: true,
    seal: 'none',
  },
  'sessions-journal': {
    files: 'sessions.snapshot, sessions.<gen>.journal (seal: sessions.seal, a copy in RAM: /var/run/sluice/)',
    on: {
      cut: 'refused',
      flip: 'read-past',
      empty: 'refused',
      deleted: 'refused',
      older: 'refused',
      directory: 'refused',
    },
    door: 'closed',
    why:
      'paid sessions: a damaged line is read past (resynchronised on the framing, copies kept as .corrupt); a ' +
      'journal gone, emptied, without its header, cut below what was acknowledged, or older than its seal (a ' +
      'generation counter: the journal generation and the bytes on flash, written after a commit at most every 10 s ' +
      'and at a stop, beside it and in RAM, so a whole state_dir put back is seen until a reboot) refuses to ' +
      "start (ERR_STATE_LOST) until --reset-state. Only a torn record past the seal is a crash's, and cut. The " +
      'snapshot is written whole by rename and its header says its length: one cut anywhere, or a directory in its ' +
      'place, refuses to start; a bit flipped in its header is read past (its journal is the newest one)',
    copy: true,
    seal: 'beside',
  },
} as const satisfies Record<string, FileVerdict>;

export type FileKind = keyof typeof FILE_KINDS;

export function verdictOf(kind: FileKind): FileVerdict {
  return FILE_KINDS[kind];
}
