/**
 * Turns the method table into a ubus object definition. Every reply is a table; a failure is answered the way the
 * DESIGN fixes it: a data reply `{error: {code, message}}` followed by the matching non-zero ubus status, so both
 * `ubus call` users (who see the status) and programs (which read the code) learn why.
 */
import { SluiceError, toSluiceError, type AnyErrorCode } from '../errors.ts';
import {
  BlobmsgType,
  type BlobmsgTable,
  encodeBlobmsgTable,
  type UbusRequestContext,
  UBUS_MAX_MSGLEN,
  type UbusObjectDef,
  type UbusReply,
} from '../ubus/index.ts';
import { checkArgs, signatureOf } from './args.ts';
import { METHODS, type MethodTable } from './methods.ts';
import { statusForCode } from './status.ts';
import type { CallOrigin, SluiceBackend } from './backend.ts';
import { callerOf, RPC_SESSION_ARG, type Caller, type LoginLookup } from './caller.ts';

export const OBJECT_PATH = 'sluice';

export interface ApiObjectOptions {
  /** Called for every failed call of a method anyone may call (the daemon logs it); never for successes. */
  onError?: (method: string, code: AnyErrorCode, message: string) => void;
  /**
   * Called for every admin call, done or refused (`code` null: done), with who made it (caller.ts) and its arguments
   * (never the rpcd session id): the daemon logs each, so every act of a staff login is in logread with its name.
   */
  onAdminCall?: (method: string, caller: Caller, args: BlobmsgTable, code: AnyErrorCode | null) => void;
  /** Names the login of an rpcd session id (rpcdLoginLookup); absent: a call that carries one is refused. */
  loginOf?: LoginLookup;
  /** The methods served (methods.ts methodTable of the daemon's plugin list); default: payments/plugins.ts's. */
  methods?: MethodTable;
}

export function errorReply(err: unknown): UbusReply {
  return replyOf(toSluiceError(err));
}

function replyOf(e: SluiceError): UbusReply {
  return { status: statusForCode(e.code), data: { error: { code: e.code, message: e.message } } };
}

/**
 * Runs a method by name; `origin` says who called (the ubus object: ubus; the daemon's upstream commands: mqtt, coa).
 */
export async function invokeMethod(
  backend: SluiceBackend,
  name: string,
  args: BlobmsgTable,
  call: CallOrigin | { origin: CallOrigin; methods: MethodTable } = 'ubus',
): Promise<UbusReply> {
  const { origin, methods } = typeof call === 'string' ? { origin: call, methods: METHODS } : call;
  const method = methods[name];
  if (!method) return errorReply(new Error(`unknown method ${name}`));
  const checked = checkArgs(method.args, args);
  const data = await method.handler(checked, backend, { origin });
  // A reply past ubus's message limit would fail in the connection with a bare status and no body (`sessions` at
  // ~2,400 sessions did): say so with a code instead. Leaves room for the message header and attributes.
  // Encoded once: the reply sends these bytes.
  const encoded = encodeBlobmsgTable(data);
  const size = encoded.length;
  if (size > UBUS_MAX_MSGLEN - 4096) {
    throw new SluiceError(
      'ERR_REPLY_TOO_LARGE',
      `the ${name} reply would be ${size} bytes, past the ubus message limit; ask for less (sessions: limit, ` +
        'offset, state)',
      { details: { size } },
    );
  }
  return { data, encoded };
}

export function sluiceObject(backend: SluiceBackend, options: ApiObjectOptions = {}): UbusObjectDef {
  const table = options.methods ?? METHODS;
  const methods: UbusObjectDef['methods'] = {};
  for (const [name, method] of Object.entries(table)) {
    // An admin method also takes the session id uhttpd adds, to name its caller; no other method needs it.
    const policy = signatureOf(method.args);
    if (method.adminOnly) policy[RPC_SESSION_ARG] = BlobmsgType.STRING;
    methods[name] = {
      policy,
      handler: async (args: BlobmsgTable, ctx: UbusRequestContext): Promise<UbusReply> => {
        const { [RPC_SESSION_ARG]: _sessionId, ...shown } = args;
        let caller: Caller | null = null;
        try {
          if (method.adminOnly) {
            caller = await callerOf(args, ctx.user, options.loginOf);
            if (caller === null)
              throw new SluiceError('ERR_CALLER_UNKNOWN', "the caller's rpcd session is not known (expired?)");
          }
          const reply = await invokeMethod(backend, name, shown, { origin: 'ubus', methods: table });
          if (caller) options.onAdminCall?.(name, caller, shown, null);
          return reply;
        } catch (err) {
          const e = toSluiceError(err);
          if (method.adminOnly)
            options.onAdminCall?.(name, caller ?? { login: '(unknown rpcd session)' }, shown, e.code);
          else options.onError?.(name, e.code, e.message);
          return replyOf(e);
        }
      },
    };
  }
  return { path: OBJECT_PATH, methods };
}
