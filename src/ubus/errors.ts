import { SluiceError } from '../errors.ts';
import { Status, statusName } from './codec/index.ts';
import type { BlobmsgTable, UbusMessage } from './codec/index.ts';

/**
 * Error codes of the ubus client/server (the codec has its own ERR_UBUS_CODEC):
 * - ERR_UBUS_STATUS: the peer answered with a non-zero ubus status (`status` holds it).
 * - ERR_UBUS_TIMEOUT: no final STATUS within the request's timeout (ubusd itself never times out).
 * - ERR_UBUS_DISCONNECTED: the socket is gone (or reconnecting); the request's outcome is unknown.
 * - ERR_UBUS_CONNECT: could not connect, or no HELLO arrived.
 * - ERR_UBUS_CLOSED: the client was closed by its owner.
 * - ERR_UBUS_MSG_TOO_LARGE: an outgoing message exceeds UBUS_MAX_MSGLEN (libubus: INVALID_ARGUMENT).
 * - ERR_UBUS_PROTOCOL: the peer sent something that breaks the protocol (bad header, oversized frame), or no
 *   (seq, peer) pair is free because 65535 requests to one peer are pending.
 */
export type UbusErrorCode =
  | 'ERR_UBUS_STATUS'
  | 'ERR_UBUS_TIMEOUT'
  | 'ERR_UBUS_DISCONNECTED'
  | 'ERR_UBUS_CONNECT'
  | 'ERR_UBUS_CLOSED'
  | 'ERR_UBUS_MSG_TOO_LARGE'
  | 'ERR_UBUS_PROTOCOL';

/** Every client-side failure carries the equivalent ubus status too, the way libubus reports it. */
export class UbusError extends SluiceError {
  readonly status: number;

  constructor(
    code: UbusErrorCode,
    status: number,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'UbusError';
    this.status = status;
  }
}

/** The remote side answered with a non-zero status. `replies` are the DATA tables that came before it. */
export class UbusStatusError extends UbusError {
  /** What was asked, e.g. "call sluice purchase", "listen foo.*". */
  readonly context: string;
  readonly replies: BlobmsgTable[];
  /** The raw DATA messages behind `replies` (attrs.dataRaw keeps the exact bytes). */
  readonly messages: UbusMessage[];

  constructor(status: number, context: string, replies: BlobmsgTable[] = [], messages: UbusMessage[] = []) {
    super('ERR_UBUS_STATUS', status, `${context}: ${statusText(status)} (${statusName(status)})`, {
      details: { status },
    });
    this.name = 'UbusStatusError';
    this.context = context;
    this.replies = replies;
    this.messages = messages;
  }
}

export const timeoutError = (what: string, ms: number): UbusError =>
  new UbusError('ERR_UBUS_TIMEOUT', Status.TIMEOUT, `${what}: no reply within ${ms} ms`);

export const disconnectedError = (what: string, cause?: unknown): UbusError =>
  new UbusError(
    'ERR_UBUS_DISCONNECTED',
    Status.CONNECTION_FAILED,
    `${what}: not connected to ubus`,
    cause === undefined ? {} : { cause },
  );

export const closedError = (what: string): UbusError =>
  new UbusError('ERR_UBUS_CLOSED', Status.CONNECTION_FAILED, `${what}: the ubus client is closed`);

/** libubus `ubus_strerror()` texts, which the ubus CLI prints. */
const STATUS_TEXT: readonly string[] = [
  'Success',
  'Invalid command',
  'Invalid argument',
  'Method not found',
  'Not found',
  'No response',
  'Permission denied',
  'Request timed out',
  'Operation not supported',
  'Unknown error',
  'Connection failed',
  'Out of memory',
  'Parsing message data failed',
  'System error',
];

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? `Unknown error: ${status}`;
}
