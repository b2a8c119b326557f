import { SluiceError, withoutStack } from '../../errors.ts';

/** Any malformed, truncated or oversized ubus/blob/blobmsg input, or a value that cannot be encoded. */
export class UbusCodecError extends SluiceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('ERR_UBUS_CODEC', message, details === undefined ? {} : { details });
    this.name = 'UbusCodecError';
  }
}

/**
 * Bytes that do not decode (a frame, a blob, a blobmsg body): refused without a stack trace (errors.ts withoutStack);
 * the message says where in the bytes. Capturing the frames was about a third of codec-fuzz.test's CPU, which refuses
 * thousands of mutated frames.
 */
export function undecodable(message: string): UbusCodecError {
  return withoutStack(() => new UbusCodecError(message));
}
