import { SluiceError } from '../../errors.ts';

/** Any malformed, truncated or oversized ubus/blob/blobmsg input, or a value that cannot be encoded. */
export class UbusCodecError extends SluiceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('ERR_UBUS_CODEC', message, details === undefined ? {} : { details });
    this.name = 'UbusCodecError';
  }
}

/**
 * Bytes that do not decode (a frame, a blob, a blobmsg body): refused without a stack trace, as errors.ts
 * refusalWithoutStack refuses; the message says where in the bytes, and the decoder's frames add nothing to it.
 * Capturing them was about a third of codec-fuzz.test's CPU, which refuses thousands of mutated frames.
 */
export function undecodable(message: string): UbusCodecError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new UbusCodecError(message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
