/**
 * Which ubus status a SluiceError code is answered with. Callers see both: a data reply `{error: {code, message}}`
 * (why) followed by the non-zero status (the standard ubus verdict, which is all `ubus call` and LuCI's rpc show
 * without reading the data). Codes not listed map by prefix, then to UNKNOWN_ERROR.
 */
import { Status } from '../ubus/index.ts';
import type { ErrorCode } from '../errors.ts';

const BY_CODE: Readonly<Partial<Record<ErrorCode, number>>> = {
  ERR_INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  ERR_INVALID_MAC: Status.INVALID_ARGUMENT,
  ERR_INVALID_AMOUNT: Status.INVALID_ARGUMENT,
  ERR_AMOUNT_TOO_SMALL: Status.INVALID_ARGUMENT,
  ERR_AMOUNT_TOO_LARGE: Status.INVALID_ARGUMENT,
  ERR_UNKNOWN_PLAN: Status.INVALID_ARGUMENT,
  ERR_UNKNOWN_PAYMENT_METHOD: Status.INVALID_ARGUMENT,
  ERR_SESSION_METRIC_MISMATCH: Status.INVALID_ARGUMENT,
  ERR_PAYMENT_REPLAYED: Status.INVALID_ARGUMENT,
  ERR_PAYMENT_IN_PROGRESS: Status.INVALID_ARGUMENT,
  ERR_PAYMENT_METHOD_ADMIN_ONLY: Status.PERMISSION_DENIED,
  ERR_PAYMENT_INSUFFICIENT: Status.PERMISSION_DENIED,
  ERR_SESSION_NOT_FOUND: Status.NOT_FOUND,
  ERR_DEVICE_NOT_MEMBER: Status.NOT_FOUND,
  ERR_DEVICE_CODE_INVALID: Status.NOT_FOUND,
  ERR_DEVICE_BUSY: Status.PERMISSION_DENIED,
  ERR_DEVICE_LIMIT: Status.PERMISSION_DENIED,
  ERR_SESSION_STATE: Status.INVALID_ARGUMENT,
  ERR_SESSION_MOVE_TARGET: Status.INVALID_ARGUMENT,
  ERR_SESSION_MOVING: Status.INVALID_ARGUMENT,
  ERR_CONFIG_INVALID: Status.INVALID_ARGUMENT,
  ERR_UCI_PARSE: Status.PARSE_ERROR,
  ERR_NDSCTL_TIMEOUT: Status.TIMEOUT,
  ERR_PORTAL_DOWN: Status.CONNECTION_FAILED,
  ERR_SESSION_LIMIT: Status.NO_MEMORY,
  ERR_SESSIONS_CLOSED: Status.NOT_SUPPORTED,
  ERR_JOURNAL_WRITE: Status.SYSTEM_ERROR,
  ERR_CONFIG_READ: Status.SYSTEM_ERROR,
  ERR_REPLY_TOO_LARGE: Status.INVALID_ARGUMENT,
  ERR_X402_PAYLOAD_INVALID: Status.INVALID_ARGUMENT,
  ERR_X402_FACILITATOR_UNAVAILABLE: Status.CONNECTION_FAILED,
  ERR_X402_SETTLEMENT_PENDING: Status.TIMEOUT,
  ERR_X402_STORE: Status.SYSTEM_ERROR,
  ERR_UPTO_PAYLOAD_INVALID: Status.INVALID_ARGUMENT,
  ERR_UPTO_STORE: Status.SYSTEM_ERROR,
  ERR_ESCROW_FACILITATOR_UNAVAILABLE: Status.CONNECTION_FAILED,
  ERR_ESCROW_CREATE_PENDING: Status.TIMEOUT,
  ERR_ESCROW_TERMS_MISMATCH: Status.PERMISSION_DENIED,
  ERR_ESCROW_CREATE_REFUSED: Status.PERMISSION_DENIED,
  ERR_RECEIPT_INVALID: Status.INVALID_ARGUMENT,
  ERR_RECEIPT_SIGNER: Status.PERMISSION_DENIED,
  ERR_RECEIPT_SESSION: Status.PERMISSION_DENIED,
  ERR_VOUCHER_REJECTED: Status.PERMISSION_DENIED,
  ERR_VOUCHER_GUESS_LIMIT: Status.PERMISSION_DENIED,
  ERR_VOUCHER_INVALID: Status.NOT_SUPPORTED,
  ERR_UPSTREAM_UNAVAILABLE: Status.CONNECTION_FAILED,
  ERR_BATCH_CHANNEL_UNKNOWN: Status.NOT_FOUND,
  ERR_BATCH_REFUND_FORBIDDEN: Status.PERMISSION_DENIED,
  ERR_BATCH_PAYLOAD_INVALID: Status.INVALID_ARGUMENT,
  ERR_BATCH_STORE: Status.SYSTEM_ERROR,
  // Busy: the channel's previous session is not charged yet, or a refund holds it; asking again later works.
  ERR_BATCH_CHANNEL_BUSY: Status.TIMEOUT,
  ERR_BATCH_DEPOSIT_PENDING: Status.TIMEOUT,
  ERR_PAYMENT_METHOD_UNAVAILABLE: Status.NOT_SUPPORTED,
  ERR_TRIAL_USED: Status.PERMISSION_DENIED,
  ERR_TRIAL_LIMIT: Status.PERMISSION_DENIED,
  ERR_TRIAL_PLAN: Status.PERMISSION_DENIED,
  ERR_VOUCHER_REQUEST_INVALID: Status.INVALID_ARGUMENT,
  // A state file refused as damaged (fail closed): the purchase or command was not accepted.
  ERR_TRIAL_STORE: Status.SYSTEM_ERROR,
  ERR_VOUCHER_STORE: Status.SYSTEM_ERROR,
  ERR_ESCROW_LEDGER: Status.SYSTEM_ERROR,
  ERR_PCSYNC_STORE: Status.SYSTEM_ERROR,
  ERR_CASHU_STORE_DAMAGED: Status.SYSTEM_ERROR,
  ERR_CASHU_TOKEN_INVALID: Status.INVALID_ARGUMENT,
  ERR_CASHU_TOO_LARGE: Status.INVALID_ARGUMENT,
  // The swap is still going on: the session lands by itself (asking again with the same token is refused in flight).
  ERR_CASHU_PENDING: Status.TIMEOUT,
  ERR_CASHU_MINT_UNAVAILABLE: Status.CONNECTION_FAILED,
  ERR_CASHU_PAYOUT_LNURL: Status.CONNECTION_FAILED,
  ERR_CASHU_PAYOUT_NO_ADDRESS: Status.NOT_SUPPORTED,
  ERR_CASHU_PAYOUT_TOO_SMALL: Status.INVALID_ARGUMENT,
};

export function statusForCode(code: ErrorCode): number {
  const direct = BY_CODE[code];
  if (direct !== undefined) return direct;
  if (code.startsWith('ERR_INVALID_')) return Status.INVALID_ARGUMENT;
  if (code.startsWith('ERR_JOURNAL_')) return Status.SYSTEM_ERROR;
  // Every other x402 refusal (exact, upto, batch-settlement): the payment is not good for this router (docs/errors.md).
  if (code.startsWith('ERR_X402_') || code.startsWith('ERR_UPTO_') || code.startsWith('ERR_BATCH_')) return Status.PERMISSION_DENIED;
  // Every other Cashu refusal (mint, unit, keyset, lock, spent, underpaid, balance cap): the token is not good here.
  if (code.startsWith('ERR_CASHU_')) return Status.PERMISSION_DENIED;
  return Status.UNKNOWN_ERROR;
}
