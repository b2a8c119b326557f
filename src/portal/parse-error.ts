import { SluiceError } from '../errors.ts';

/**
 * An `ndsctl json` text that cannot be trusted as a reading (invalid JSON such as nodogsplash's `inf`/`nan`,
 * truncated output, a count that does not match, a negative or non-numeric counter). Callers skip the reading;
 * they never bill from a partial one.
 */
export class PortalParseError extends SluiceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('ERR_PORTAL_PARSE', message, details === undefined ? {} : { details });
    this.name = 'PortalParseError';
  }
}

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON.parse that reports failures as PortalParseError, with a short excerpt around the failing position. */
export function parseJsonText(text: string, what: string): unknown {
  if (typeof text !== 'string') throw new PortalParseError(`${what}: expected text, got ${typeof text}`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw jsonParseError(text, what, err instanceof Error ? err.message : String(err));
  }
}

/** The error for a text JSON.parse refused with `message`. */
export function jsonParseError(text: string, what: string, message: string): PortalParseError {
  const at = /position (\d+)/.exec(message);
  const position = at ? Number(at[1]) : undefined;
  const excerpt = position === undefined ? undefined : text.slice(Math.max(0, position - 30), position + 30);
  return new PortalParseError(`${what} is not valid JSON (${message})`, {
    length: text.length,
    ...(position === undefined ? {} : { position, excerpt }),
  });
}
