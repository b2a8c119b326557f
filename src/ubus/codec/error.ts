import { SluiceError } from '../../errors.ts';

/** Any malformed, truncated or oversized ubus/blob/blobmsg input, or a value that cannot be encoded. */
export class UbusCodecError extends SluiceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('ERR_UBUS_CODEC', message, details === undefined ? {} : { details });
    this.name = 'UbusCodecError';
  }
}
