/**
 * Whether a database error says the server cannot be used now (down, starting, shutting down, out of connections)
 * rather than that something is wrong for good (a bad password, a missing database, a schema too new): the first is
 * waited out, the second reported.
 */

/** SQLSTATE: connection exceptions (08), insufficient resources (53), the server shutting down or starting (57P0x). */
const UNREACHABLE_STATE = /^(08|53|57P0)/;

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

export function databaseUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return UNREACHABLE_STATE.test(code) || SOCKET_ERRORS.has(code);
  // pg's own words for a connection the server ended (no code on these).
  return err instanceof Error && /Connection terminated|connection timeout/i.test(err.message);
}
