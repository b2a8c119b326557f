/**
 * One error base for all of sluice. `code` is stable and is what ubus replies, logs and tests key on; the message is
 * for humans and may change. ERRORS is the one list of codes, and each code says there how it is answered: its ubus
 * status (api/status.ts) and its HTTP status on the LAN endpoint (http/server.ts), declared once here, so no door keeps
 * a table of its own (a method's LAN route may answer a shared code its own way: LanRoute.statusOf).
 * A code outside ERRORS does not compile, and test/errors.test.ts keeps it and docs/errors.md in step (grouped here
 * by the sections there); test/errors-status.test.ts pins the statuses.
 */

/**
 * A ubus status by its name in ubus/'s Status (errors.ts sits below ubus/, so the name, not the number):
 * ARG INVALID_ARGUMENT, DENIED PERMISSION_DENIED, NOT_FOUND, TIMEOUT, UNSUPPORTED NOT_SUPPORTED, CONN
 * CONNECTION_FAILED, NOMEM NO_MEMORY, PARSE PARSE_ERROR, SYSTEM SYSTEM_ERROR, UNKNOWN UNKNOWN_ERROR.
 */
export type UbusStatusName =
  | typeof ARG
  | typeof DENIED
  | typeof NOT_FOUND
  | typeof TIMEOUT
  | typeof UNSUPPORTED
  | typeof CONN
  | typeof NOMEM
  | typeof PARSE
  | typeof SYSTEM
  | typeof UNKNOWN;
const ARG = 'INVALID_ARGUMENT';
const DENIED = 'PERMISSION_DENIED';
const NOT_FOUND = 'NOT_FOUND';
const TIMEOUT = 'TIMEOUT';
const UNSUPPORTED = 'NOT_SUPPORTED';
const CONN = 'CONNECTION_FAILED';
const NOMEM = 'NO_MEMORY';
const PARSE = 'PARSE_ERROR';
const SYSTEM = 'SYSTEM_ERROR';
const UNKNOWN = 'UNKNOWN_ERROR';

/**
 * Every code with [its ubus status, its HTTP status]. HTTP: payment refusals are 402 (pay again), a payment still being
 * decided 504 (x402) or 202 (Cashu: accepted, being completed), another purchase with the same key still in flight 409
 * (retry when it has finished, with the same payment: a 402 would ask an x402 client for a new one), a damaged state
 * file 500 or 503; 500 also for codes the LAN endpoint never answers with. ubus: the status after the `{error}` data
 * reply (docs/ubus-api.md); a refused payment is PERMISSION_DENIED, a damaged state file SYSTEM_ERROR, a bug
 * UNKNOWN_ERROR.
 */
export const ERRORS = {
  // Arguments and money
  ERR_INVALID_ARGUMENT: [ARG, 400],
  ERR_INVALID_MAC: [ARG, 400],
  ERR_INVALID_AMOUNT: [ARG, 400],
  ERR_AMOUNT_TOO_SMALL: [ARG, 400],
  ERR_AMOUNT_TOO_LARGE: [ARG, 400],
  ERR_EXTEND_TOO_LARGE: [ARG, 400],
  ERR_UNKNOWN_PLAN: [ARG, 400],
  ERR_PLAN_INVALID: [UNKNOWN, 500],
  ERR_UNKNOWN_PAYMENT_METHOD: [ARG, 501],
  ERR_PAYMENT_METHOD_UNAVAILABLE: [UNSUPPORTED, 503],
  ERR_PAYMENT_METHOD_ADMIN_ONLY: [DENIED, 500],
  ERR_PAYMENT_METHOD_INVALID: [UNKNOWN, 500],
  ERR_PAYMENT_INSUFFICIENT: [DENIED, 500],
  ERR_PAYMENT_REPLAYED: [ARG, 402],
  ERR_PAYMENT_IN_PROGRESS: [ARG, 409],
  ERR_REPLY_TOO_LARGE: [ARG, 500],
  ERR_INVALID_GRANT: [ARG, 400],
  // Sessions and the journal
  ERR_SESSION_NOT_FOUND: [NOT_FOUND, 404],
  ERR_SESSION_METRIC_MISMATCH: [ARG, 400],
  ERR_SESSION_LIMIT: [NOMEM, 500],
  ERR_SESSION_STATE: [ARG, 500],
  ERR_SESSION_MOVE_TARGET: [ARG, 409],
  ERR_SESSION_MOVING: [ARG, 409],
  ERR_VENUE_DEVICE_PRESENT: [ARG, 409],
  ERR_VENUE_REFUSED: [ARG, 409],
  ERR_VENUE_HELD_ELSEWHERE: [ARG, 409],
  ERR_VENUE_BUSY: [CONN, 503],
  ERR_INVALID_END_CAUSE: [ARG, 400],
  ERR_SESSIONS_STATE: [UNKNOWN, 500],
  ERR_SESSIONS_CLOSED: [UNSUPPORTED, 500],
  ERR_STORE_CLOSED: [UNKNOWN, 500],
  ERR_JOURNAL_WRITE: [SYSTEM, 500],
  ERR_JOURNAL_READ: [SYSTEM, 500],
  ERR_JOURNAL_TORN: [SYSTEM, 500],
  ERR_JOURNAL_CORRUPT: [SYSTEM, 500],
  ERR_STATE_LOST: [UNKNOWN, 500],
  ERR_STATE_RESET: [UNKNOWN, 500],
  ERR_JOURNAL_COMPACT: [SYSTEM, 500],
  ERR_STATE_LOCKED: [UNKNOWN, 500],
  ERR_STATE_DIR: [UNKNOWN, 500],
  ERR_JOURNAL_RECOVERED: [SYSTEM, 500],
  ERR_LISTENER: [UNKNOWN, 500],
  // The captive portal
  ERR_NDSCTL_TIMEOUT: [TIMEOUT, 500],
  ERR_NDSCTL_BUSY: [UNKNOWN, 500],
  ERR_NDSCTL_REJECTED: [UNKNOWN, 500],
  ERR_NDSCTL_FAILED: [UNKNOWN, 500],
  ERR_KERNEL_QUOTA: [UNKNOWN, 500],
  ERR_GATE_NFT: [UNKNOWN, 500],
  ERR_SHAPER: [UNKNOWN, 500],
  ERR_NDSCTL_MISSING: [UNKNOWN, 500],
  ERR_PORTAL_DOWN: [CONN, 500],
  ERR_PORTAL_AUTH_UNKNOWN: [TIMEOUT, 500],
  ERR_PORTAL_PARSE: [UNKNOWN, 500],
  ERR_PORTAL_CLIENT_UNKNOWN: [UNKNOWN, 500],
  ERR_PORTAL_CLIENT_BLOCKED: [UNKNOWN, 500],
  ERR_PORTAL_CLIENT_STATE: [UNKNOWN, 500],
  ERR_VALVE_CLOSED: [UNKNOWN, 500],
  ERR_METER_WORKER: [UNKNOWN, 500],
  ERR_METER_APPLY: [UNKNOWN, 500],
  ERR_METER_UNBILLED: [UNKNOWN, 500],
  ERR_TRIAL_USED: [DENIED, 403],
  ERR_TRIAL_LIMIT: [DENIED, 403],
  ERR_TRIAL_PLAN: [DENIED, 400],
  ERR_TRIAL_STORE: [SYSTEM, 500],
  ERR_TRIAL_VENUE_UNREACHABLE: [CONN, 503],
  // Configuration
  ERR_UCI_PARSE: [PARSE, 500],
  ERR_UCI_INVALID: [UNKNOWN, 500],
  ERR_CONFIG_INVALID: [ARG, 500],
  ERR_CONFIG_READ: [SYSTEM, 500],
  ERR_WRITE_FAILED: [UNKNOWN, 500],
  ERR_LOG_RECORD_TOO_LARGE: [UNKNOWN, 500],
  // ubus
  ERR_UBUS_STATUS: [UNKNOWN, 500],
  ERR_UBUS_TIMEOUT: [UNKNOWN, 500],
  ERR_UBUS_DISCONNECTED: [UNKNOWN, 500],
  ERR_UBUS_CONNECT: [UNKNOWN, 500],
  ERR_UBUS_CLOSED: [UNKNOWN, 500],
  ERR_UBUS_MSG_TOO_LARGE: [UNKNOWN, 500],
  ERR_UBUS_PROTOCOL: [UNKNOWN, 500],
  ERR_UBUS_CODEC: [UNKNOWN, 500],
  ERR_UBUS_HANDLER: [UNKNOWN, 500],
  ERR_CALLER_UNKNOWN: [DENIED, 500],
  ERR_UBUS_BROKER_LISTEN: [UNKNOWN, 500],
  // Upstream outbox
  ERR_OUTBOX_OPTIONS: [UNKNOWN, 500],
  ERR_OUTBOX_OPEN: [UNKNOWN, 500],
  ERR_OUTBOX_CLOSED: [UNKNOWN, 500],
  ERR_OUTBOX_RECORD_TOO_LARGE: [UNKNOWN, 500],
  ERR_OUTBOX_WRITE: [UNKNOWN, 500],
  ERR_OUTBOX_SYNC: [UNKNOWN, 500],
  ERR_OUTBOX_TORN: [UNKNOWN, 500],
  ERR_OUTBOX_CORRUPT: [UNKNOWN, 500],
  ERR_OUTBOX_IO: [UNKNOWN, 500],
  ERR_OUTBOX_READ: [UNKNOWN, 500],
  // x402 payments
  ERR_X402_PAYLOAD_INVALID: [ARG, 402],
  ERR_X402_SIGNATURE_UNSUPPORTED: [DENIED, 402],
  ERR_X402_SCHEME_UNSUPPORTED: [DENIED, 402],
  ERR_X402_NETWORK_MISMATCH: [DENIED, 402],
  ERR_X402_ASSET_UNSUPPORTED: [DENIED, 402],
  ERR_X402_ASSET_MISMATCH: [DENIED, 402],
  ERR_X402_DOMAIN_MISMATCH: [DENIED, 402],
  ERR_X402_PAY_TO_MISMATCH: [DENIED, 402],
  ERR_X402_UNDERPAID: [DENIED, 402],
  ERR_X402_EXPIRED: [DENIED, 402],
  ERR_X402_NOT_YET_VALID: [DENIED, 402],
  ERR_X402_WINDOW_TOO_LONG: [DENIED, 402],
  ERR_X402_SIGNATURE_INVALID: [DENIED, 402],
  ERR_X402_NONCE_REPLAYED: [DENIED, 402],
  ERR_X402_BUSY: [DENIED, 402],
  ERR_X402_FACILITATOR_UNAVAILABLE: [CONN, 503],
  ERR_X402_VERIFY_REJECTED: [DENIED, 402],
  ERR_X402_SETTLE_FAILED: [DENIED, 402],
  ERR_X402_SETTLEMENT_PENDING: [TIMEOUT, 504],
  ERR_X402_SETTLEMENT_UNCONFIRMED: [DENIED, 402],
  ERR_X402_AUTHORIZATION_CANCELED: [DENIED, 402],
  ERR_X402_RPC_UNAVAILABLE: [DENIED, 402],
  ERR_X402_STORE: [SYSTEM, 402],
  ERR_X402_CLOSED: [DENIED, 402],
  // x402 LAN endpoint
  ERR_HTTP_CLIENT_UNKNOWN: [UNKNOWN, 403],
  ERR_HTTP_RATE_LIMITED: [UNKNOWN, 500],
  ERR_HTTP_METHOD: [UNKNOWN, 500],
  ERR_HTTP_NOT_FOUND: [UNKNOWN, 500],
  ERR_VOUCHER_REQUEST_INVALID: [ARG, 400],
  ERR_HTTP_LISTEN: [UNKNOWN, 500],
  ERR_HTTP_CLIENT_AMBIGUOUS: [UNKNOWN, 409],
  ERR_HTTP_VERSION: [UNKNOWN, 400],
  ERR_RESTORE_INVALID: [UNKNOWN, 400],
  ERR_RESTORE_CHALLENGE: [UNKNOWN, 403],
  ERR_RESTORE_EXPIRED: [UNKNOWN, 403],
  ERR_RESTORE_SIGNER: [UNKNOWN, 403],
  ERR_RESTORE_NO_SESSION: [UNKNOWN, 404],
  ERR_RESTORE_SESSION_ENDED: [UNKNOWN, 404],
  // Escrow sessions: payment method `x402-session`
  ERR_ESCROW_TERMS_MISMATCH: [DENIED, 500],
  ERR_ESCROW_CREATE_REFUSED: [DENIED, 500],
  ERR_ESCROW_FACILITATOR_UNAVAILABLE: [CONN, 500],
  ERR_ESCROW_CREATE_PENDING: [TIMEOUT, 500],
  ERR_ESCROW_LEDGER: [SYSTEM, 500],
  // x402 batch-settlement: payment method `batch-settlement`
  ERR_BATCH_PAYLOAD_INVALID: [ARG, 402],
  ERR_BATCH_CHANNEL_MISMATCH: [DENIED, 402],
  ERR_BATCH_VOUCHER_INVALID: [DENIED, 402],
  ERR_BATCH_CUMULATIVE_MISMATCH: [DENIED, 402],
  ERR_BATCH_CHANNEL_BUSY: [TIMEOUT, 409],
  ERR_BATCH_VERIFY_REJECTED: [DENIED, 402],
  ERR_BATCH_DEPOSIT_PENDING: [TIMEOUT, 504],
  ERR_BATCH_STORE: [SYSTEM, 500],
  ERR_BATCH_CHANNEL_UNKNOWN: [NOT_FOUND, 404],
  ERR_BATCH_REFUND_FORBIDDEN: [DENIED, 403],
  ERR_BATCH_REFUND_NO_BALANCE: [DENIED, 409],
  ERR_BATCH_CHANNEL_WITHDRAWING: [DENIED, 402],
  // x402 upto: payment method `upto`
  ERR_UPTO_PAYLOAD_INVALID: [ARG, 402],
  ERR_UPTO_AUTHORIZATION_INVALID: [DENIED, 402],
  ERR_UPTO_REPLAYED: [DENIED, 402],
  ERR_UPTO_VERIFY_REJECTED: [DENIED, 402],
  ERR_UPTO_STORE: [SYSTEM, 500],
  // Escrow usage receipts
  ERR_RECEIPT_INVALID: [ARG, 400],
  ERR_RECEIPT_SIGNER: [DENIED, 403],
  ERR_RECEIPT_SESSION: [DENIED, 403],
  // MQTT
  ERR_MQTT_COMMAND_INVALID: [UNKNOWN, 500],
  ERR_MQTT_COMMAND_SIGNATURE: [UNKNOWN, 500],
  ERR_MQTT_COMMAND_EXPIRED: [UNKNOWN, 500],
  ERR_MQTT_COMMAND_REPLAYED: [UNKNOWN, 500],
  ERR_MQTT_COMMAND_UNKNOWN: [UNKNOWN, 500],
  // The hook (PC-sync webhook)
  ERR_HOOK_DELIVERY: [UNKNOWN, 500],
  // Several devices per purchase (a plan's `devices`)
  ERR_DEVICE_CODE_INVALID: [NOT_FOUND, 404],
  ERR_DEVICE_BUSY: [DENIED, 409],
  ERR_DEVICE_LIMIT: [DENIED, 409],
  ERR_DEVICE_NOT_MEMBER: [NOT_FOUND, 404],
  // PC-sync, inbound (POST /pcsync/logout on the LAN endpoint)
  ERR_PCSYNC_INVALID: [UNKNOWN, 400],
  ERR_PCSYNC_SIGNATURE: [UNKNOWN, 401],
  ERR_PCSYNC_EXPIRED: [UNKNOWN, 401],
  ERR_PCSYNC_REPLAYED: [UNKNOWN, 409],
  ERR_PCSYNC_STORE: [SYSTEM, 503],
  ERR_PCSYNC_NONCES_LOST: [UNKNOWN, 503],
  // TollGate interface (tollgate.listen): the router's Nostr key, a POST / that carries no payment
  ERR_NOSTR_KEY: [UNKNOWN, 500],
  ERR_TOLLGATE_REQUEST: [UNKNOWN, 500],
  ERR_TOLLGATE_PENDING: [UNKNOWN, 500],
  // Cashu receive (payment method `cashu`) and the ecash custody store (src/payments/cashu/)
  ERR_CASHU_MINT_NOT_ACCEPTED: [DENIED, 402],
  ERR_CASHU_UNIT: [DENIED, 402],
  ERR_CASHU_KEYSET_UNKNOWN: [DENIED, 402],
  ERR_CASHU_TOKEN_LOCKED: [DENIED, 402],
  ERR_CASHU_TOKEN_INVALID: [ARG, 402],
  ERR_CASHU_TOKEN_SPENT: [DENIED, 402],
  ERR_CASHU_TOO_LARGE: [ARG, 402],
  ERR_CASHU_UNDERPAID: [DENIED, 402],
  ERR_CASHU_PENDING: [TIMEOUT, 202],
  ERR_CASHU_MINT_UNAVAILABLE: [CONN, 503],
  ERR_CASHU_BALANCE_FULL: [DENIED, 402],
  ERR_CASHU_QUOTE_CLAIMED: [DENIED, 409],
  ERR_CASHU_STORE_DAMAGED: [SYSTEM, 500],
  ERR_CASHU_STORE_WRITE: [SYSTEM, 500],
  ERR_CASHU_PAYOUT_NO_ADDRESS: [UNSUPPORTED, 402],
  ERR_CASHU_PAYOUT_LNURL: [CONN, 402],
  ERR_CASHU_PAYOUT_TOO_SMALL: [ARG, 402],
  // RADIUS
  ERR_VOUCHER_REJECTED: [DENIED, 403],
  ERR_VOUCHER_INVALID: [UNSUPPORTED, 400],
  ERR_UPSTREAM_UNAVAILABLE: [CONN, 503],
  ERR_RADIUS_PACKET: [UNKNOWN, 500],
  ERR_RADIUS_DAS_LISTEN: [UNKNOWN, 500],
  ERR_RADIUS_STATE: [UNKNOWN, 500],
  // Printed vouchers (payments/local-voucher)
  ERR_VOUCHER_GUESS_LIMIT: [DENIED, 429],
  ERR_VOUCHER_STORE: [SYSTEM, 503],
  // The fleet (sluice fleet: a server's, never a router's; never answered over ubus or the LAN endpoint)
  ERR_FLEET_SCHEMA_TOO_NEW: [UNKNOWN, 500],
  ERR_FLEET_TIME_ZONE: [ARG, 400],
  ERR_FLEET_ALERT_MAIL: [CONN, 503],
  // Other
  ERR_MODULE_LOAD: [UNKNOWN, 500],
  ERR_INTERNAL: [UNKNOWN, 500],
} as const satisfies Readonly<Record<string, readonly [UbusStatusName, number]>>;

export type ErrorCode = keyof typeof ERRORS;

/** Every code, in ERRORS's order. */
export const ERROR_CODES = Object.keys(ERRORS) as readonly ErrorCode[];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** For codes that arrive as text (a peer's reply, a journal line): narrows to ErrorCode when it is one of ours. */
export function isErrorCode(code: string): code is ErrorCode {
  return KNOWN.has(code);
}

/**
 * A payment method's own code, declared in its folder with its statuses (methodErrors), as a plugin brings its config
 * section: the doors answer it as they answer a code of ERRORS, and the core names none.
 */
export type MethodErrorCode = string & { readonly methodErrorCode: true };

/** What a SluiceError carries: a code of ERRORS, or a payment method's own. */
export type AnyErrorCode = ErrorCode | MethodErrorCode;

const METHOD_ERRORS = new Map<string, readonly [UbusStatusName, number]>();

/**
 * Declares a payment method's own codes, each with [its ubus status, its HTTP status] as ERRORS has them; returns the
 * codes to throw. A code must read `ERR_` and capitals, and be no code of ERRORS nor another method's (a programming
 * error: thrown when the method's module loads). docs/errors.md lists the built-in methods' codes in ERRORS; a method
 * declared this way lists its own in its folder.
 */
export function methodErrors<K extends string>(
  table: Readonly<Record<K, readonly [UbusStatusName, number]>>,
): { readonly [P in K]: MethodErrorCode } {
  for (const [code, statuses] of Object.entries(table) as Array<[string, readonly [UbusStatusName, number]]>) {
    if (!/^ERR_[A-Z0-9_]+$/.test(code)) throw new Error(`${code}: an error code is ERR_ followed by capitals`);
    if (isErrorCode(code) || METHOD_ERRORS.has(code)) throw new Error(`${code} is declared already`);
    METHOD_ERRORS.set(code, statuses);
  }
  return Object.fromEntries(Object.keys(table).map((code) => [code, code])) as { readonly [P in K]: MethodErrorCode };
}

export class SluiceError extends Error {
  readonly code: AnyErrorCode;
  /** Extra machine-readable facts (e.g. the config option that failed); never secrets. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: AnyErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: AnyErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isSluiceError(err: unknown, code?: AnyErrorCode): err is SluiceError {
  return err instanceof SluiceError && (code === undefined || err.code === code);
}

/** The ubus status a code is answered with, by its name (api/status.ts turns it into the number). */
export function ubusStatusOf(code: AnyErrorCode): UbusStatusName {
  return isErrorCode(code) ? ERRORS[code][0] : (METHOD_ERRORS.get(code)?.[0] ?? UNKNOWN);
}

/** The HTTP status a code is answered with on the LAN endpoint; 500 for text that is not one of our codes. */
export function httpStatusOf(code: string): number {
  return isErrorCode(code) ? ERRORS[code][1] : (METHOD_ERRORS.get(code)?.[1] ?? 500);
}

/**
 * What `make` builds, made without a stack trace: for refusals made by the thousand whose stack nobody reads (a flood's
 * wrong voucher codes, a datagram or dump that does not parse), where the message says where and the frames would only
 * name the parser's own methods. Capturing them was ~10% of a refused guess's CPU and about half of a short datagram's
 * refusal. `stack` is then the name and message only.
 */
export function withoutStack<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** A SluiceError without its stack trace (withoutStack). */
export function refusalWithoutStack(
  code: AnyErrorCode,
  message: string,
  options: { details?: Record<string, unknown> } = {},
): SluiceError {
  return withoutStack(() => new SluiceError(code, message, options));
}

/** Wraps anything thrown into a SluiceError so callers can always read `code`. */
export function toSluiceError(err: unknown, fallbackCode: ErrorCode = 'ERR_INTERNAL'): SluiceError {
  if (err instanceof SluiceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SluiceError(fallbackCode, message, { cause: err });
}
