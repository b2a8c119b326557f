// tier: fast
/**
 * The ubus status and the HTTP status every error code is answered with, pinned as they were before the statuses moved
 * into src/errors.ts (issue 38 item 1): moving where a status is declared must not change one. A new code is added here
 * with the statuses it is meant to have. Changed since, on purpose: ERR_PAYMENT_IN_PROGRESS 500 → 409 and
 * ERR_TRIAL_PLAN 500 → 400 at the endpoint's own routes (/buy, /voucher). The LAN endpoint's statuses are pinned where
 * a code can arise: its own routes for every code but those only a method's route raises, and each method route's own
 * codes there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_CODES } from '../src/errors.ts';
import { statusForCode } from '../src/api/status.ts';
import { refusalStatus } from '../src/http/server.ts';
import { PAYMENT_PLUGINS } from '../src/payments/index.ts';
import { Status } from '../src/ubus/index.ts';

/**
 * The x402 refusals of a payment: PERMISSION_DENIED on ubus, 402 (pay again) on /buy and the batch routes alike. Not
 * among them: a payload that does not parse (INVALID_ARGUMENT), the store (SYSTEM_ERROR), a settlement pending (504 on
 * /buy, 402 on the batch routes).
 */
const X402_REFUSED = [
  'ERR_X402_SIGNATURE_UNSUPPORTED',
  'ERR_X402_SCHEME_UNSUPPORTED',
  'ERR_X402_NETWORK_MISMATCH',
  'ERR_X402_ASSET_UNSUPPORTED',
  'ERR_X402_ASSET_MISMATCH',
  'ERR_X402_DOMAIN_MISMATCH',
  'ERR_X402_PAY_TO_MISMATCH',
  'ERR_X402_UNDERPAID',
  'ERR_X402_EXPIRED',
  'ERR_X402_NOT_YET_VALID',
  'ERR_X402_WINDOW_TOO_LONG',
  'ERR_X402_SIGNATURE_INVALID',
  'ERR_X402_NONCE_REPLAYED',
  'ERR_X402_BUSY',
  'ERR_X402_VERIFY_REJECTED',
  'ERR_X402_SETTLE_FAILED',
  'ERR_X402_SETTLEMENT_UNCONFIRMED',
  'ERR_X402_AUTHORIZATION_CANCELED',
  'ERR_X402_RPC_UNAVAILABLE',
  'ERR_X402_CLOSED',
];
/** The batch-settlement refusals of a voucher or channel, 402 wherever they arise. */
const BATCH_REFUSED = [
  'ERR_BATCH_CHANNEL_MISMATCH',
  'ERR_BATCH_VOUCHER_INVALID',
  'ERR_BATCH_CUMULATIVE_MISMATCH',
  'ERR_BATCH_VERIFY_REJECTED',
  'ERR_BATCH_CHANNEL_WITHDRAWING',
];

/** ubus: the status after the `{error}` data reply (api/object.ts), by the status's name in ubus's Status. */
const UBUS: Record<keyof typeof Status, string[]> = {
  OK: [],
  INVALID_COMMAND: [],
  METHOD_NOT_FOUND: [],
  NO_DATA: [],
  CONNECTION_FAILED: [
    'ERR_PORTAL_DOWN',
    'ERR_X402_FACILITATOR_UNAVAILABLE',
    'ERR_ESCROW_FACILITATOR_UNAVAILABLE',
    'ERR_CASHU_MINT_UNAVAILABLE',
    'ERR_CASHU_PAYOUT_LNURL',
    'ERR_UPSTREAM_UNAVAILABLE',
  ],
  INVALID_ARGUMENT: [
    'ERR_INVALID_ARGUMENT',
    'ERR_INVALID_MAC',
    'ERR_INVALID_AMOUNT',
    'ERR_AMOUNT_TOO_SMALL',
    'ERR_AMOUNT_TOO_LARGE',
    'ERR_UNKNOWN_PLAN',
    'ERR_UNKNOWN_PAYMENT_METHOD',
    'ERR_PAYMENT_REPLAYED',
    'ERR_PAYMENT_IN_PROGRESS',
    'ERR_REPLY_TOO_LARGE',
    'ERR_INVALID_GRANT',
    'ERR_SESSION_METRIC_MISMATCH',
    'ERR_SESSION_STATE',
    'ERR_SESSION_MOVE_TARGET',
    'ERR_SESSION_MOVING',
    'ERR_INVALID_END_CAUSE',
    'ERR_CONFIG_INVALID',
    'ERR_X402_PAYLOAD_INVALID',
    'ERR_VOUCHER_REQUEST_INVALID',
    'ERR_BATCH_PAYLOAD_INVALID',
    'ERR_UPTO_PAYLOAD_INVALID',
    'ERR_RECEIPT_INVALID',
    'ERR_CASHU_TOKEN_INVALID',
    'ERR_CASHU_TOO_LARGE',
    'ERR_CASHU_PAYOUT_TOO_SMALL',
  ],
  NO_MEMORY: ['ERR_SESSION_LIMIT'],
  NOT_FOUND: ['ERR_SESSION_NOT_FOUND', 'ERR_BATCH_CHANNEL_UNKNOWN', 'ERR_DEVICE_CODE_INVALID', 'ERR_DEVICE_NOT_MEMBER'],
  NOT_SUPPORTED: [
    'ERR_PAYMENT_METHOD_UNAVAILABLE',
    'ERR_SESSIONS_CLOSED',
    'ERR_CASHU_PAYOUT_NO_ADDRESS',
    'ERR_VOUCHER_INVALID',
  ],
  PARSE_ERROR: ['ERR_UCI_PARSE'],
  PERMISSION_DENIED: [
    'ERR_CALLER_UNKNOWN',
    'ERR_PAYMENT_METHOD_ADMIN_ONLY',
    'ERR_PAYMENT_INSUFFICIENT',
    'ERR_TRIAL_USED',
    'ERR_TRIAL_LIMIT',
    'ERR_TRIAL_PLAN',
    ...X402_REFUSED,
    'ERR_ESCROW_TERMS_MISMATCH',
    'ERR_ESCROW_CREATE_REFUSED',
    'ERR_BATCH_CHANNEL_MISMATCH',
    'ERR_BATCH_VOUCHER_INVALID',
    'ERR_BATCH_CUMULATIVE_MISMATCH',
    'ERR_BATCH_VERIFY_REJECTED',
    'ERR_BATCH_REFUND_FORBIDDEN',
    'ERR_BATCH_REFUND_NO_BALANCE',
    'ERR_BATCH_CHANNEL_WITHDRAWING',
    'ERR_UPTO_AUTHORIZATION_INVALID',
    'ERR_UPTO_REPLAYED',
    'ERR_UPTO_VERIFY_REJECTED',
    'ERR_RECEIPT_SIGNER',
    'ERR_RECEIPT_SESSION',
    'ERR_DEVICE_BUSY',
    'ERR_DEVICE_LIMIT',
    'ERR_CASHU_MINT_NOT_ACCEPTED',
    'ERR_CASHU_UNIT',
    'ERR_CASHU_KEYSET_UNKNOWN',
    'ERR_CASHU_TOKEN_LOCKED',
    'ERR_CASHU_TOKEN_SPENT',
    'ERR_CASHU_UNDERPAID',
    'ERR_CASHU_BALANCE_FULL',
    'ERR_CASHU_QUOTE_CLAIMED',
    'ERR_VOUCHER_REJECTED',
    'ERR_VOUCHER_GUESS_LIMIT',
  ],
  SYSTEM_ERROR: [
    'ERR_JOURNAL_WRITE',
    'ERR_JOURNAL_READ',
    'ERR_JOURNAL_TORN',
    'ERR_JOURNAL_CORRUPT',
    'ERR_JOURNAL_COMPACT',
    'ERR_JOURNAL_RECOVERED',
    'ERR_TRIAL_STORE',
    'ERR_CONFIG_READ',
    'ERR_X402_STORE',
    'ERR_ESCROW_LEDGER',
    'ERR_BATCH_STORE',
    'ERR_UPTO_STORE',
    'ERR_PCSYNC_STORE',
    'ERR_CASHU_STORE_DAMAGED',
    'ERR_VOUCHER_STORE',
  ],
  TIMEOUT: [
    'ERR_NDSCTL_TIMEOUT',
    'ERR_X402_SETTLEMENT_PENDING',
    'ERR_ESCROW_CREATE_PENDING',
    'ERR_BATCH_CHANNEL_BUSY',
    'ERR_BATCH_DEPOSIT_PENDING',
    'ERR_CASHU_PENDING',
  ],
  UNKNOWN_ERROR: [
    'ERR_PLAN_INVALID',
    'ERR_PAYMENT_METHOD_INVALID',
    'ERR_SESSIONS_STATE',
    'ERR_STORE_CLOSED',
    'ERR_STATE_LOST',
    'ERR_STATE_RESET',
    'ERR_STATE_LOCKED',
    'ERR_STATE_DIR',
    'ERR_LISTENER',
    'ERR_NDSCTL_BUSY',
    'ERR_NDSCTL_REJECTED',
    'ERR_NDSCTL_FAILED',
    'ERR_KERNEL_QUOTA',
    'ERR_SHAPER',
    'ERR_NDSCTL_MISSING',
    'ERR_PORTAL_PARSE',
    'ERR_PORTAL_CLIENT_UNKNOWN',
    'ERR_PORTAL_CLIENT_BLOCKED',
    'ERR_PORTAL_CLIENT_STATE',
    'ERR_VALVE_CLOSED',
    'ERR_METER_WORKER',
    'ERR_METER_APPLY',
    'ERR_METER_UNBILLED',
    'ERR_UCI_INVALID',
    'ERR_WRITE_FAILED',
    'ERR_LOG_RECORD_TOO_LARGE',
    'ERR_UBUS_STATUS',
    'ERR_UBUS_TIMEOUT',
    'ERR_UBUS_DISCONNECTED',
    'ERR_UBUS_CONNECT',
    'ERR_UBUS_CLOSED',
    'ERR_UBUS_MSG_TOO_LARGE',
    'ERR_UBUS_PROTOCOL',
    'ERR_UBUS_CODEC',
    'ERR_UBUS_HANDLER',
    'ERR_UBUS_BROKER_LISTEN',
    'ERR_OUTBOX_OPTIONS',
    'ERR_OUTBOX_OPEN',
    'ERR_OUTBOX_CLOSED',
    'ERR_OUTBOX_RECORD_TOO_LARGE',
    'ERR_OUTBOX_WRITE',
    'ERR_OUTBOX_SYNC',
    'ERR_OUTBOX_TORN',
    'ERR_OUTBOX_CORRUPT',
    'ERR_OUTBOX_IO',
    'ERR_OUTBOX_READ',
    'ERR_HTTP_CLIENT_UNKNOWN',
    'ERR_HTTP_RATE_LIMITED',
    'ERR_HTTP_METHOD',
    'ERR_HTTP_NOT_FOUND',
    'ERR_HTTP_LISTEN',
    'ERR_HTTP_CLIENT_AMBIGUOUS',
    'ERR_HTTP_VERSION',
    'ERR_RESTORE_INVALID',
    'ERR_RESTORE_CHALLENGE',
    'ERR_RESTORE_EXPIRED',
    'ERR_RESTORE_SIGNER',
    'ERR_RESTORE_NO_SESSION',
    'ERR_RESTORE_SESSION_ENDED',
    'ERR_MQTT_COMMAND_INVALID',
    'ERR_MQTT_COMMAND_SIGNATURE',
    'ERR_MQTT_COMMAND_EXPIRED',
    'ERR_MQTT_COMMAND_REPLAYED',
    'ERR_MQTT_COMMAND_UNKNOWN',
    'ERR_HOOK_DELIVERY',
    'ERR_PCSYNC_INVALID',
    'ERR_PCSYNC_SIGNATURE',
    'ERR_PCSYNC_EXPIRED',
    'ERR_PCSYNC_REPLAYED',
    'ERR_PCSYNC_NONCES_LOST',
    'ERR_NOSTR_KEY',
    'ERR_TOLLGATE_REQUEST',
    'ERR_TOLLGATE_PENDING',
    'ERR_RADIUS_PACKET',
    'ERR_RADIUS_DAS_LISTEN',
    'ERR_RADIUS_STATE',
    'ERR_FLEET_SCHEMA_TOO_NEW',
    'ERR_MODULE_LOAD',
    'ERR_INTERNAL',
  ],
};

/** Raised only by a method's own LAN routes (ROUTES below), never by the endpoint's own. */
const ROUTE_ONLY = /^ERR_(TRIAL_USED|TRIAL_LIMIT|RECEIPT_|CASHU_|BATCH_CHANNEL_UNKNOWN|BATCH_REFUND_)/;

/** HTTP at the endpoint's own routes (/buy, /voucher, /session, restores, devices, PC-sync …). */
const HTTP: Record<number, string[]> = {
  400: [
    'ERR_INVALID_ARGUMENT',
    'ERR_INVALID_MAC',
    'ERR_INVALID_AMOUNT',
    'ERR_AMOUNT_TOO_SMALL',
    'ERR_AMOUNT_TOO_LARGE',
    'ERR_UNKNOWN_PLAN',
    'ERR_INVALID_GRANT',
    'ERR_SESSION_METRIC_MISMATCH',
    'ERR_INVALID_END_CAUSE',
    'ERR_VOUCHER_REQUEST_INVALID',
    'ERR_HTTP_VERSION',
    'ERR_RESTORE_INVALID',
    'ERR_PCSYNC_INVALID',
    'ERR_VOUCHER_INVALID',
    'ERR_TRIAL_PLAN',
  ],
  401: ['ERR_PCSYNC_SIGNATURE', 'ERR_PCSYNC_EXPIRED'],
  402: [
    'ERR_PAYMENT_REPLAYED',
    'ERR_X402_PAYLOAD_INVALID',
    ...X402_REFUSED,
    'ERR_X402_STORE',
    'ERR_BATCH_PAYLOAD_INVALID',
    ...BATCH_REFUSED,
    'ERR_UPTO_PAYLOAD_INVALID',
    'ERR_UPTO_AUTHORIZATION_INVALID',
    'ERR_UPTO_REPLAYED',
    'ERR_UPTO_VERIFY_REJECTED',
  ],
  403: [
    'ERR_HTTP_CLIENT_UNKNOWN',
    'ERR_RESTORE_CHALLENGE',
    'ERR_RESTORE_EXPIRED',
    'ERR_RESTORE_SIGNER',
    'ERR_VOUCHER_REJECTED',
  ],
  404: [
    'ERR_SESSION_NOT_FOUND',
    'ERR_RESTORE_NO_SESSION',
    'ERR_RESTORE_SESSION_ENDED',
    'ERR_DEVICE_CODE_INVALID',
    'ERR_DEVICE_NOT_MEMBER',
  ],
  409: [
    'ERR_PAYMENT_IN_PROGRESS',
    'ERR_SESSION_MOVE_TARGET',
    'ERR_SESSION_MOVING',
    'ERR_HTTP_CLIENT_AMBIGUOUS',
    'ERR_BATCH_CHANNEL_BUSY',
    'ERR_DEVICE_BUSY',
    'ERR_DEVICE_LIMIT',
    'ERR_PCSYNC_REPLAYED',
  ],
  500: [
    'ERR_PLAN_INVALID',
    'ERR_PAYMENT_METHOD_ADMIN_ONLY',
    'ERR_PAYMENT_METHOD_INVALID',
    'ERR_PAYMENT_INSUFFICIENT',
    'ERR_REPLY_TOO_LARGE',
    'ERR_SESSION_LIMIT',
    'ERR_SESSION_STATE',
    'ERR_SESSIONS_STATE',
    'ERR_SESSIONS_CLOSED',
    'ERR_STORE_CLOSED',
    'ERR_JOURNAL_WRITE',
    'ERR_JOURNAL_READ',
    'ERR_JOURNAL_TORN',
    'ERR_JOURNAL_CORRUPT',
    'ERR_STATE_LOST',
    'ERR_STATE_RESET',
    'ERR_JOURNAL_COMPACT',
    'ERR_STATE_LOCKED',
    'ERR_STATE_DIR',
    'ERR_JOURNAL_RECOVERED',
    'ERR_LISTENER',
    'ERR_NDSCTL_TIMEOUT',
    'ERR_NDSCTL_BUSY',
    'ERR_NDSCTL_REJECTED',
    'ERR_NDSCTL_FAILED',
    'ERR_KERNEL_QUOTA',
    'ERR_SHAPER',
    'ERR_NDSCTL_MISSING',
    'ERR_PORTAL_DOWN',
    'ERR_PORTAL_PARSE',
    'ERR_PORTAL_CLIENT_UNKNOWN',
    'ERR_PORTAL_CLIENT_BLOCKED',
    'ERR_PORTAL_CLIENT_STATE',
    'ERR_VALVE_CLOSED',
    'ERR_METER_WORKER',
    'ERR_METER_APPLY',
    'ERR_METER_UNBILLED',
    'ERR_TRIAL_STORE',
    'ERR_UCI_PARSE',
    'ERR_UCI_INVALID',
    'ERR_CONFIG_INVALID',
    'ERR_CONFIG_READ',
    'ERR_WRITE_FAILED',
    'ERR_LOG_RECORD_TOO_LARGE',
    'ERR_UBUS_STATUS',
    'ERR_UBUS_TIMEOUT',
    'ERR_UBUS_DISCONNECTED',
    'ERR_UBUS_CONNECT',
    'ERR_UBUS_CLOSED',
    'ERR_UBUS_MSG_TOO_LARGE',
    'ERR_UBUS_PROTOCOL',
    'ERR_UBUS_CODEC',
    'ERR_UBUS_HANDLER',
    'ERR_CALLER_UNKNOWN',
    'ERR_UBUS_BROKER_LISTEN',
    'ERR_OUTBOX_OPTIONS',
    'ERR_OUTBOX_OPEN',
    'ERR_OUTBOX_CLOSED',
    'ERR_OUTBOX_RECORD_TOO_LARGE',
    'ERR_OUTBOX_WRITE',
    'ERR_OUTBOX_SYNC',
    'ERR_OUTBOX_TORN',
    'ERR_OUTBOX_CORRUPT',
    'ERR_OUTBOX_IO',
    'ERR_OUTBOX_READ',
    'ERR_HTTP_RATE_LIMITED',
    'ERR_HTTP_METHOD',
    'ERR_HTTP_NOT_FOUND',
    'ERR_HTTP_LISTEN',
    'ERR_ESCROW_TERMS_MISMATCH',
    'ERR_ESCROW_CREATE_REFUSED',
    'ERR_ESCROW_FACILITATOR_UNAVAILABLE',
    'ERR_ESCROW_CREATE_PENDING',
    'ERR_ESCROW_LEDGER',
    'ERR_BATCH_STORE',
    'ERR_UPTO_STORE',
    'ERR_MQTT_COMMAND_INVALID',
    'ERR_MQTT_COMMAND_SIGNATURE',
    'ERR_MQTT_COMMAND_EXPIRED',
    'ERR_MQTT_COMMAND_REPLAYED',
    'ERR_MQTT_COMMAND_UNKNOWN',
    'ERR_HOOK_DELIVERY',
    'ERR_NOSTR_KEY',
    'ERR_TOLLGATE_REQUEST',
    'ERR_TOLLGATE_PENDING',
    'ERR_RADIUS_PACKET',
    'ERR_RADIUS_DAS_LISTEN',
    'ERR_RADIUS_STATE',
    'ERR_FLEET_SCHEMA_TOO_NEW',
    'ERR_MODULE_LOAD',
    'ERR_INTERNAL',
  ],
  // A wait, not a fault: Retry-After says how long.
  429: ['ERR_VOUCHER_GUESS_LIMIT'],
  501: ['ERR_UNKNOWN_PAYMENT_METHOD'],
  503: [
    'ERR_PAYMENT_METHOD_UNAVAILABLE',
    'ERR_X402_FACILITATOR_UNAVAILABLE',
    'ERR_PCSYNC_STORE',
    'ERR_PCSYNC_NONCES_LOST',
    'ERR_UPSTREAM_UNAVAILABLE',
    'ERR_VOUCHER_STORE',
  ],
  504: ['ERR_X402_SETTLEMENT_PENDING', 'ERR_BATCH_DEPOSIT_PENDING'],
};

/** A batch-settlement route (/batch/channel, /batch/refund): the payment's refusals, and the channel's own. */
const BATCH_ROUTE: Record<number, string[]> = {
  400: ['ERR_INVALID_ARGUMENT', 'ERR_BATCH_PAYLOAD_INVALID'],
  402: [
    'ERR_X402_PAYLOAD_INVALID',
    ...X402_REFUSED,
    'ERR_X402_STORE',
    'ERR_X402_SETTLEMENT_PENDING',
    ...BATCH_REFUSED,
    'ERR_BATCH_DEPOSIT_PENDING',
  ],
  403: ['ERR_BATCH_REFUND_FORBIDDEN'],
  404: ['ERR_BATCH_CHANNEL_UNKNOWN'],
  409: ['ERR_BATCH_CHANNEL_BUSY', 'ERR_BATCH_REFUND_NO_BALANCE'],
  500: ['ERR_BATCH_STORE'],
  501: ['ERR_UNKNOWN_PAYMENT_METHOD'],
  503: ['ERR_X402_FACILITATOR_UNAVAILABLE'],
};

/** A Cashu route (/cashu/pay, /cashu/lightning): a token or invoice in flight, and every refused token, is 402. */
const CASHU_ROUTE: Record<number, string[]> = {
  202: ['ERR_CASHU_PENDING'],
  402: [
    'ERR_PAYMENT_IN_PROGRESS',
    'ERR_CASHU_MINT_NOT_ACCEPTED',
    'ERR_CASHU_UNIT',
    'ERR_CASHU_KEYSET_UNKNOWN',
    'ERR_CASHU_TOKEN_LOCKED',
    'ERR_CASHU_TOKEN_INVALID',
    'ERR_CASHU_TOKEN_SPENT',
    'ERR_CASHU_TOO_LARGE',
    'ERR_CASHU_UNDERPAID',
    'ERR_CASHU_BALANCE_FULL',
    'ERR_CASHU_PAYOUT_NO_ADDRESS',
    'ERR_CASHU_PAYOUT_LNURL',
    'ERR_CASHU_PAYOUT_TOO_SMALL',
  ],
  500: ['ERR_CASHU_STORE_DAMAGED'],
  503: ['ERR_CASHU_MINT_UNAVAILABLE'],
};

/** HTTP at each method route, for the codes that route raises and answers on its own terms. */
const ROUTES: Record<string, Record<number, string[]>> = {
  'POST /receipt': {
    400: ['ERR_RECEIPT_INVALID'],
    403: ['ERR_RECEIPT_SIGNER', 'ERR_RECEIPT_SESSION'],
  },
  'GET /batch/channel': BATCH_ROUTE,
  'GET /batch/refund': BATCH_ROUTE,
  'POST /batch/refund': BATCH_ROUTE,
  'POST /trial': {
    400: ['ERR_TRIAL_PLAN'],
    403: ['ERR_TRIAL_USED', 'ERR_TRIAL_LIMIT'],
  },
  'POST /cashu/pay': CASHU_ROUTE,
  'POST /cashu/lightning': CASHU_ROUTE,
  'GET /cashu/lightning': { 409: ['ERR_CASHU_QUOTE_CLAIMED'] },
};

const flat = (table: Record<string | number, string[]>): Map<string, string> =>
  new Map(Object.entries(table).flatMap(([status, codes]) => codes.map((c) => [c, status] as const)));

test('every code has its pinned ubus status, and the pin names every code once', () => {
  const pinned = flat(UBUS);
  assert.equal([...pinned.keys()].sort(), [...ERROR_CODES].sort());
  for (const code of ERROR_CODES) assert.is(statusForCode(code), Status[pinned.get(code) as keyof typeof Status], code);
});

test("every code the LAN endpoint's own routes can raise has its pinned HTTP status", () => {
  const pinned = flat(HTTP);
  assert.equal([...pinned.keys()].sort(), ERROR_CODES.filter((c) => !ROUTE_ONLY.test(c)).sort());
  for (const [code, status] of pinned) assert.is(refusalStatus(code), Number(status), code);
});

test('each method route answers its codes with the pinned HTTP status', () => {
  const routes = new Map(
    PAYMENT_PLUGINS.flatMap((p) => (p.lanRoutes ?? []).map((r) => [`${r.method} ${r.path}` as string, r] as const)),
  );
  for (const [key, table] of Object.entries(ROUTES)) {
    const route = routes.get(key);
    assert.ok(route, key);
    for (const [code, status] of flat(table)) assert.is(refusalStatus(code, route), Number(status), `${key} ${code}`);
  }
  for (const code of ERROR_CODES.filter((c) => ROUTE_ONLY.test(c))) {
    assert.ok(
      Object.values(ROUTES).some((t) => flat(t).has(code)),
      `${code} is pinned on the route that raises it`,
    );
  }
});

test.run();
