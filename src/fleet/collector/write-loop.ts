/**
 * The collector's one way to write: a database that cannot be reached is waited for, a conflict run again, anything
 * else thrown to the caller, who refuses the message (collector.ts; db/errors.ts classifies).
 */
import type { Log } from '../../log.ts';
import { classifyFailure, errorName, type Db } from '../db/index.ts';

/** A transaction rolled back for a conflict is run again this many times, then its message is refused. */
const CONFLICT_RETRIES = 8;

/** What untilWritten gives back when the message is no longer wanted (its connection closed, or stopping). */
export const GIVE_UP = Symbol('give up');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WriteLoopOptions {
  db: Db;
  log: Log;
  /** Logs a line once per key. */
  once: (key: string, line: () => void) => void;
  /** An attempt failed on the database (and is retried). */
  onDbError: () => void;
  stopped: () => boolean;
}

export type UntilWritten = <T>(attempt: () => Promise<T>, wanted: () => boolean) => Promise<T | typeof GIVE_UP>;

export function writeLoop(o: WriteLoopOptions): UntilWritten {
  let dbDown = false;
  /**
   * Runs attempt until the database takes it: a database away is waited for (the message, and so its connection's
   * stream, held) with a pause doubling to 5 s; a transaction rolled back for a conflict is run again up to
   * CONFLICT_RETRIES times; any other failure is the message's, thrown to the caller, who refuses it (one the
   * database did not itself give, only once it comes again while the database answers: db/errors.ts classifyFailure).
   */
  return async function untilWritten<T>(attempt: () => Promise<T>, wanted: () => boolean): Promise<T | typeof GIVE_UP> {
    let delay = 250;
    let conflicts = 0;
    let triedAgain = false;
    for (;;) {
      if (!wanted()) return GIVE_UP;
      try {
        const out = await attempt();
        if (dbDown) {
          dbDown = false;
          o.log.info('fleet: database reachable again');
        }
        return out;
      } catch (err) {
        const found = await classifyFailure(err, o.db);
        if (found === 'unsure' && !triedAgain) {
          triedAgain = true;
          continue;
        }
        const kind = found === 'unsure' ? 'refused' : found;
        if (kind === 'refused' || (kind === 'conflict' && ++conflicts > CONFLICT_RETRIES)) throw err;
        o.onDbError();
        if (kind === 'conflict') {
          o.once(`conflict ${errorName(err)}`, () =>
            o.log.warn('fleet: transaction rolled back by the database, run again', { code: errorName(err) }),
          );
        } else if (!dbDown) {
          dbDown = true;
          o.log.error('fleet: database unreachable: holding the stream until it is back', {
            error: (err as Error).message,
          });
        }
        if (o.stopped()) return GIVE_UP;
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  };
}
