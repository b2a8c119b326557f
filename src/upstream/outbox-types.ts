/** The outbox's options and figures (outbox.ts has the store itself). */
import { SluiceError } from '../errors.ts';
import type { Clock, Timers } from '../time.ts';

export interface OutboxOptions {
  dir: string;
  /** Bound on the bytes of all segment files (durable records may exceed it, see above). */
  maxBytes: number;
  /** Named readers, each with its own acknowledgements and persisted cursor (1 to 30). */
  consumers: readonly string[];
  /** Size at which the active segment is closed and a new one started. Default maxBytes/8, within 4 KiB … 1 MiB. */
  segmentBytes?: number;
  /** Longest a droppable record waits for its fsync. Default 5000. */
  syncIntervalMs?: number;
  /** How often changed cursors are written. Default 30000. */
  cursorIntervalMs?: number;
  clock?: Clock;
  /** For the fsync and cursor timers. Default backgroundTimers: a pending write never keeps the process alive. */
  timers?: Timers;
  /**
   * Keep droppable records in RAM (a ring bounded by maxBytes of its own) instead of writing them: for records whose
   * loss in a crash loses nothing in sum (the next one carries the totals). They are lost by a crash, a power cut
   * and a close (their sequence numbers are then a gap); numbering after a crash resumes past the reserved block.
   */
  droppableInRam?: boolean;
  /** Problems worked around: a torn tail cut off at open, a failed background fsync or compaction. */
  onWarning?: (err: SluiceError) => void;
  /**
   * Opened at the daemon's start, before anything is served: the directory is read and the seq mark written
   * synchronously (storage/file-calls.ts syncCalls), where each thread-pool hop only costs CPU. Otherwise (a reload,
   * a sink started while the daemon serves) on the pool.
   */
  atStart?: boolean;
}

/**
 * A record's bytes, or a function of its sequence number that returns them; `prevDurable` is the number of the durable
 * record before it (0: none ever), so a consumer can tell a gap of droppable records from a lost durable one.
 */
export type Payload = Uint8Array | ((seq: number, prevDurable: number) => Uint8Array);

export interface AppendOptions {
  /** Durable records are fsynced before append() resolves and never dropped to make room. */
  durable: boolean;
  /** 0 … 255, the consumer's own tag. Default 0. */
  type?: number;
}

export interface OutboxConsumerStats {
  pending: number;
  floor: number;
}

export interface OutboxStats {
  /** Records not yet finished (acknowledged by every consumer or dropped). */
  records: number;
  bytes: number;
  /** Payload and header bytes of the droppable records held in RAM (droppableInRam). */
  ramBytes: number;
  maxBytes: number;
  overLimitBytes: number;
  segments: number;
  /** The sequence number the next append gets. */
  nextSeq: number;
  appended: number;
  dropped: number;
  droppedBytes: number;
  writes: number;
  fsyncs: number;
  compactions: number;
  cursorWrites: number;
  consumers: Record<string, OutboxConsumerStats>;
}

const CONSUMER_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** Refuses options the store cannot work with (ERR_OUTBOX_OPTIONS). */
export function checkOptions(options: OutboxOptions): void {
  const names = options.consumers;
  if (names.length < 1 || names.length > 30 || new Set(names).size !== names.length || !names.every(isConsumerName)) {
    throw new SluiceError(
      'ERR_OUTBOX_OPTIONS',
      `outbox consumers must be 1 to 30 distinct names [a-z0-9_-], got ${JSON.stringify(names)}`,
    );
  }
  if (!(Number.isSafeInteger(options.maxBytes) && options.maxBytes >= 4096)) {
    throw new SluiceError('ERR_OUTBOX_OPTIONS', `outbox maxBytes must be at least 4096, got ${options.maxBytes}`);
  }
}

const isConsumerName = (c: string): boolean => CONSUMER_RE.test(c);
