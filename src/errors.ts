/**
 * One error base for all of sluice. `code` is stable and is what ubus replies, logs and tests key on; the message is
 * for humans and may change. ERROR_CODES is the one list of codes: a code outside it does not compile, and
 * test/errors.test.ts keeps it and docs/errors.md in step (grouped here by the sections there).
 */
export const ERROR_CODES = [
  // Arguments and money
  'ERR_INVALID_ARGUMENT', 'ERR_INVALID_MAC', 'ERR_INVALID_AMOUNT', 'ERR_AMOUNT_TOO_SMALL', 'ERR_AMOUNT_TOO_LARGE',
  'ERR_UNKNOWN_PLAN', 'ERR_PLAN_INVALID', 'ERR_UNKNOWN_PAYMENT_METHOD', 'ERR_PAYMENT_METHOD_UNAVAILABLE', 'ERR_PAYMENT_METHOD_ADMIN_ONLY',
  'ERR_PAYMENT_METHOD_INVALID', 'ERR_PAYMENT_INSUFFICIENT', 'ERR_PAYMENT_REPLAYED', 'ERR_PAYMENT_IN_PROGRESS',
  'ERR_REPLY_TOO_LARGE', 'ERR_INVALID_GRANT',
  // Sessions and the journal
  'ERR_SESSION_NOT_FOUND', 'ERR_SESSION_METRIC_MISMATCH', 'ERR_SESSION_LIMIT', 'ERR_SESSION_STATE',
  'ERR_SESSION_MOVE_TARGET', 'ERR_SESSION_MOVING',
  'ERR_INVALID_END_CAUSE', 'ERR_SESSIONS_STATE', 'ERR_SESSIONS_CLOSED', 'ERR_STORE_CLOSED', 'ERR_JOURNAL_WRITE',
  'ERR_JOURNAL_READ', 'ERR_JOURNAL_TORN', 'ERR_JOURNAL_CORRUPT', 'ERR_STATE_LOST', 'ERR_STATE_RESET',
  'ERR_JOURNAL_COMPACT', 'ERR_STATE_LOCKED', 'ERR_STATE_DIR', 'ERR_JOURNAL_RECOVERED', 'ERR_LISTENER',
  // The captive portal
  'ERR_NDSCTL_TIMEOUT', 'ERR_NDSCTL_BUSY', 'ERR_NDSCTL_REJECTED', 'ERR_NDSCTL_FAILED', 'ERR_KERNEL_QUOTA', 'ERR_SHAPER',
  'ERR_NDSCTL_MISSING', 'ERR_PORTAL_DOWN', 'ERR_PORTAL_PARSE', 'ERR_PORTAL_CLIENT_UNKNOWN', 'ERR_PORTAL_CLIENT_BLOCKED',
  'ERR_PORTAL_CLIENT_STATE', 'ERR_VALVE_CLOSED', 'ERR_METER_WORKER', 'ERR_METER_APPLY', 'ERR_METER_UNBILLED', 'ERR_TRIAL_USED', 'ERR_TRIAL_LIMIT', 'ERR_TRIAL_PLAN', 'ERR_TRIAL_STORE',
  // Configuration
  'ERR_UCI_PARSE', 'ERR_UCI_INVALID', 'ERR_CONFIG_INVALID', 'ERR_CONFIG_READ', 'ERR_WRITE_FAILED', 'ERR_LOG_RECORD_TOO_LARGE',
  // ubus
  'ERR_UBUS_STATUS', 'ERR_UBUS_TIMEOUT', 'ERR_UBUS_DISCONNECTED', 'ERR_UBUS_CONNECT', 'ERR_UBUS_CLOSED',
  'ERR_UBUS_MSG_TOO_LARGE', 'ERR_UBUS_PROTOCOL', 'ERR_UBUS_CODEC', 'ERR_UBUS_HANDLER', 'ERR_UBUS_BROKER_LISTEN',
  // Upstream outbox
  'ERR_OUTBOX_OPTIONS', 'ERR_OUTBOX_OPEN', 'ERR_OUTBOX_CLOSED', 'ERR_OUTBOX_RECORD_TOO_LARGE', 'ERR_OUTBOX_WRITE',
  'ERR_OUTBOX_SYNC', 'ERR_OUTBOX_TORN', 'ERR_OUTBOX_CORRUPT', 'ERR_OUTBOX_IO', 'ERR_OUTBOX_READ',
  // x402 payments
  'ERR_X402_PAYLOAD_INVALID', 'ERR_X402_SIGNATURE_UNSUPPORTED', 'ERR_X402_SCHEME_UNSUPPORTED',
  'ERR_X402_NETWORK_MISMATCH', 'ERR_X402_ASSET_UNSUPPORTED', 'ERR_X402_ASSET_MISMATCH', 'ERR_X402_DOMAIN_MISMATCH',
  'ERR_X402_PAY_TO_MISMATCH', 'ERR_X402_UNDERPAID', 'ERR_X402_EXPIRED', 'ERR_X402_NOT_YET_VALID',
  'ERR_X402_WINDOW_TOO_LONG', 'ERR_X402_SIGNATURE_INVALID', 'ERR_X402_NONCE_REPLAYED', 'ERR_X402_BUSY',
  'ERR_X402_FACILITATOR_UNAVAILABLE', 'ERR_X402_VERIFY_REJECTED', 'ERR_X402_SETTLE_FAILED',
  'ERR_X402_SETTLEMENT_PENDING', 'ERR_X402_SETTLEMENT_UNCONFIRMED', 'ERR_X402_AUTHORIZATION_CANCELED',
  'ERR_X402_RPC_UNAVAILABLE', 'ERR_X402_STORE', 'ERR_X402_CLOSED',
  // x402 LAN endpoint
  'ERR_HTTP_CLIENT_UNKNOWN', 'ERR_HTTP_RATE_LIMITED', 'ERR_HTTP_METHOD', 'ERR_HTTP_NOT_FOUND',
  'ERR_VOUCHER_REQUEST_INVALID', 'ERR_HTTP_LISTEN', 'ERR_HTTP_CLIENT_AMBIGUOUS', 'ERR_HTTP_VERSION',
  'ERR_RESTORE_INVALID', 'ERR_RESTORE_CHALLENGE', 'ERR_RESTORE_EXPIRED', 'ERR_RESTORE_SIGNER', 'ERR_RESTORE_NO_SESSION',
  'ERR_RESTORE_SESSION_ENDED',
  // Escrow sessions: payment method `x402-session`
  'ERR_ESCROW_TERMS_MISMATCH', 'ERR_ESCROW_CREATE_REFUSED', 'ERR_ESCROW_FACILITATOR_UNAVAILABLE',
  'ERR_ESCROW_CREATE_PENDING', 'ERR_ESCROW_LEDGER',
  // x402 batch-settlement: payment method `batch-settlement`
  'ERR_BATCH_PAYLOAD_INVALID', 'ERR_BATCH_CHANNEL_MISMATCH', 'ERR_BATCH_VOUCHER_INVALID', 'ERR_BATCH_CUMULATIVE_MISMATCH',
  'ERR_BATCH_CHANNEL_BUSY', 'ERR_BATCH_VERIFY_REJECTED', 'ERR_BATCH_DEPOSIT_PENDING', 'ERR_BATCH_STORE',
  'ERR_BATCH_CHANNEL_UNKNOWN', 'ERR_BATCH_REFUND_FORBIDDEN', 'ERR_BATCH_REFUND_NO_BALANCE', 'ERR_BATCH_CHANNEL_WITHDRAWING',
  // x402 upto: payment method `upto`
  'ERR_UPTO_PAYLOAD_INVALID', 'ERR_UPTO_AUTHORIZATION_INVALID', 'ERR_UPTO_REPLAYED', 'ERR_UPTO_VERIFY_REJECTED', 'ERR_UPTO_STORE',
  // Escrow usage receipts
  'ERR_RECEIPT_INVALID', 'ERR_RECEIPT_SIGNER', 'ERR_RECEIPT_SESSION',
  // MQTT
  'ERR_MQTT_COMMAND_INVALID', 'ERR_MQTT_COMMAND_SIGNATURE', 'ERR_MQTT_COMMAND_EXPIRED', 'ERR_MQTT_COMMAND_REPLAYED',
  'ERR_MQTT_COMMAND_UNKNOWN',
  // The hook (PC-sync webhook)
  'ERR_HOOK_DELIVERY',
  // Several devices per purchase (a plan's `devices`)
  'ERR_DEVICE_CODE_INVALID', 'ERR_DEVICE_BUSY', 'ERR_DEVICE_LIMIT', 'ERR_DEVICE_NOT_MEMBER',
  // PC-sync, inbound (POST /pcsync/logout on the LAN endpoint)
  'ERR_PCSYNC_INVALID', 'ERR_PCSYNC_SIGNATURE', 'ERR_PCSYNC_EXPIRED', 'ERR_PCSYNC_REPLAYED', 'ERR_PCSYNC_STORE', 'ERR_PCSYNC_NONCES_LOST',
  // TollGate interface (tollgate.listen): the router's Nostr key, a POST / that carries no payment
  'ERR_NOSTR_KEY', 'ERR_TOLLGATE_REQUEST', 'ERR_TOLLGATE_PENDING',
  // Cashu receive (payment method `cashu`) and the ecash custody store (src/payments/cashu/)
  'ERR_CASHU_MINT_NOT_ACCEPTED', 'ERR_CASHU_UNIT', 'ERR_CASHU_KEYSET_UNKNOWN', 'ERR_CASHU_TOKEN_LOCKED', 'ERR_CASHU_TOKEN_INVALID',
  'ERR_CASHU_TOKEN_SPENT', 'ERR_CASHU_TOO_LARGE', 'ERR_CASHU_UNDERPAID', 'ERR_CASHU_PENDING', 'ERR_CASHU_MINT_UNAVAILABLE',
  'ERR_CASHU_BALANCE_FULL', 'ERR_CASHU_STORE_DAMAGED', 'ERR_CASHU_PAYOUT_NO_ADDRESS', 'ERR_CASHU_PAYOUT_LNURL', 'ERR_CASHU_PAYOUT_TOO_SMALL',
  // RADIUS
  'ERR_VOUCHER_REJECTED', 'ERR_VOUCHER_INVALID', 'ERR_UPSTREAM_UNAVAILABLE', 'ERR_RADIUS_PACKET',
  'ERR_RADIUS_DAS_LISTEN', 'ERR_RADIUS_STATE',
  // Printed vouchers (payments/local-voucher)
  'ERR_VOUCHER_GUESS_LIMIT', 'ERR_VOUCHER_STORE',
  // Other
  'ERR_MODULE_LOAD', 'ERR_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** For codes that arrive as text (a peer's reply, a journal line): narrows to ErrorCode when it is one of ours. */
export function isErrorCode(code: string): code is ErrorCode {
  return KNOWN.has(code);
}

export class SluiceError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts (e.g. the config option that failed); never secrets. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isSluiceError(err: unknown, code?: ErrorCode): err is SluiceError {
  return err instanceof SluiceError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a SluiceError so callers can always read `code`. */
export function toSluiceError(err: unknown, fallbackCode: ErrorCode = 'ERR_INTERNAL'): SluiceError {
  if (err instanceof SluiceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SluiceError(fallbackCode, message, { cause: err });
}
