/**
 * Who made an admin call, for the log line every admin call leaves (the counter's staff print vouchers, extend and
 * end sessions: each act names the login that did it). A call through LuCI reaches the object from uhttpd with the
 * caller's rpcd session id in `ubus_rpc_session` (uhttpd drops one the browser sent and puts its own); rpcd keeps the
 * login's name in that session's data (`username`, set at `session login`), which `session get` answers. A call made
 * on the router itself (`ubus call`, the CLI) has no rpcd session: ubusd names the calling account.
 */
import type { BlobmsgTable, BlobmsgValue } from '../ubus/index.ts';

/** The argument uhttpd adds to every call it forwards: the caller's rpcd session id (a secret: never logged). */
export const RPC_SESSION_ARG = 'ubus_rpc_session';

/** A login's name from its rpcd session id; null when rpcd knows no such session (expired, or a made-up id). */
export type LoginLookup = (sessionId: string) => Promise<string | null>;

/** `login`: an rpcd login (LuCI, uhttpd's /ubus); `account`: a local caller's account as ubusd names it. */
export type Caller = { login: string } | { account: string };

/** What the object may call to name a login: ubus `session get` (rpcd), with a bound on the wait. */
export interface SessionObject {
  call(
    path: string,
    method: string,
    args: BlobmsgTable,
    opts: { timeoutMs: number },
  ): Promise<BlobmsgTable | undefined>;
}

const LOOKUP_TIMEOUT_MS = 3000;

/** rpcd's answer to `session get {keys: [username]}`: `{values: {username}}`; an unknown session fails the call. */
export function rpcdLoginLookup(ubus: SessionObject): LoginLookup {
  return async (sessionId) => {
    let reply: BlobmsgTable | undefined;
    try {
      reply = await ubus.call(
        'session',
        'get',
        { [RPC_SESSION_ARG]: sessionId, keys: ['username'] },
        { timeoutMs: LOOKUP_TIMEOUT_MS },
      );
    } catch {
      return null;
    }
    const values = reply?.values;
    if (typeof values !== 'object' || values === null || Array.isArray(values) || typeof values === 'bigint')
      return null;
    const name = (values as BlobmsgTable).username;
    return typeof name === 'string' && name !== '' ? name : null;
  };
}

/**
 * The caller of one call: its rpcd login when the call carries a session id, else the local account as ubusd named it
 * (`unknown` when it sent none). Null: a session id rpcd does not know; the object refuses such an admin call, since
 * nobody could be named for it.
 */
export async function callerOf(
  args: BlobmsgTable,
  account: string | undefined,
  lookup: LoginLookup | undefined,
): Promise<Caller | null> {
  const sessionId: BlobmsgValue | undefined = args[RPC_SESSION_ARG];
  if (typeof sessionId === 'string' && sessionId !== '') {
    const login = lookup ? await lookup(sessionId) : null;
    return login === null ? null : { login };
  }
  return account === undefined || account === '' ? { account: 'unknown' } : { account };
}

/** The caller as log fields: `login` or `account`. */
export function callerFields(caller: Caller): Record<string, string> {
  return 'login' in caller ? { login: caller.login } : { account: caller.account };
}

/** A call's arguments as log fields: the scalars (a table or list is left out: no admin method takes one). */
export function argFields(args: BlobmsgTable): Record<string, string | number | bigint | boolean | null> {
  const out: Record<string, string | number | bigint | boolean | null> = {};
  for (const [key, value] of Object.entries(args)) {
    if (value === null || typeof value !== 'object') out[key] = value;
  }
  return out;
}

/**
 * The object's options that name and log admin callers (sluiceObject's onAdminCall and loginOf): one `admin call`
 * line per admin call, with its arguments, its caller and its result code.
 */
export function adminCallLogging(
  log: { info(msg: string, fields: Record<string, string | number | bigint | boolean | null>): void },
  ubus: SessionObject,
): {
  onAdminCall: (method: string, caller: Caller, args: BlobmsgTable, code: string | null) => void;
  loginOf: LoginLookup;
} {
  return {
    onAdminCall: (method, caller, args, code) =>
      log.info('admin call', { method, ...argFields(args), ...callerFields(caller), result: code ?? 'ok' }),
    loginOf: rpcdLoginLookup(ubus),
  };
}
