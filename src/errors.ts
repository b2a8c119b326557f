/**
 * One error base for all of sluice. `code` is stable (documented in docs/errors.md) and is what ubus replies,
 * logs and tests key on; the message is for humans and may change.
 */
export class SluiceError extends Error {
  readonly code: string;
  /** Extra machine-readable facts (e.g. the config option that failed); never secrets. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isSluiceError(err: unknown, code?: string): err is SluiceError {
  return err instanceof SluiceError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a SluiceError so callers can always read `code`. */
export function toSluiceError(err: unknown, fallbackCode = 'ERR_INTERNAL'): SluiceError {
  if (err instanceof SluiceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SluiceError(fallbackCode, message, { cause: err });
}
