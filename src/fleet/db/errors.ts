/**
 * What a failed write says, decided here once for the whole fleet: the database cannot be used now (down, starting,
 * shutting down, out of connections: wait and try again, holding what waits), the database rolled the transaction
 * back for a conflict with another (a serialization failure, a deadlock: run it again), or anything else — a value
 * the database refuses, a limit it hit, a throw in sluice's own code — which is about the message and would fail
 * the same way forever: refused, counted and let go, so one message never holds a stream.
 */

export type DbErrorClass = 'unreachable' | 'conflict' | 'refused';

/** SQLSTATE: connection exceptions (08), insufficient resources (53), the server shutting down or starting (57P0x). */
const UNREACHABLE_STATE = /^(08|53|57P0)/;
/** SQLSTATE: serialization failure, deadlock detected. */
const CONFLICT_STATE = new Set(['40001', '40P01']);

/** Node's socket errors for a server that is not there (yet). */
const SOCKET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** pg's own words for a connection that ended, broke or never came (no code on these: pg/lib/client.js, pg-pool). */
const CONNECTION_WORDS = new RegExp(
  [
    'Connection terminated',
    'connection timeout',
    'timeout exceeded when trying to connect',
    'is not queryable',
    'Query read timeout',
    'timeout expired',
  ].join('|'),
  'i',
);

export function classifyDbError(err: unknown): DbErrorClass {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (UNREACHABLE_STATE.test(code) || SOCKET_ERRORS.has(code)) return 'unreachable';
    if (CONFLICT_STATE.has(code)) return 'conflict';
    return 'refused';
  }
  return err instanceof Error && CONNECTION_WORDS.test(err.message) ? 'unreachable' : 'refused';
}

/** Whether the database itself answered with this failure (a SQLSTATE), rather than the connection or sluice's code. */
export function databaseVerdict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/**
 * classifyDbError, asking the database when the failure is not its own verdict (no SQLSTATE): a connection broken in
 * an outage does not always say so in words this file knows, so one whose database does not answer SELECT 1 is
 * 'unreachable'; one whose database answers is 'unsure', the message's only if it comes again (the caller's to try).
 */
export async function classifyFailure(
  err: unknown,
  db: { query(sql: string): Promise<unknown> },
): Promise<DbErrorClass | 'unsure'> {
  const kind = classifyDbError(err);
  if (kind !== 'refused' || databaseVerdict(err)) return kind;
  const answers = await db.query('SELECT 1').then(
    () => true,
    () => false,
  );
  return answers ? 'unsure' : 'unreachable';
}

export function databaseUnreachable(err: unknown): boolean {
  return classifyDbError(err) === 'unreachable';
}

/** A short name of what failed, for a reject's reason: the SQLSTATE, or the error's class in sluice's own code. */
export function errorName(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code.slice(0, 16);
  return err instanceof Error ? err.name.slice(0, 32) : typeof err;
}
