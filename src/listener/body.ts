/**
 * The small JSON bodies of POST /receipt and /voucher.
 *
 * An oversized body is answered (413), not cut off: closing a socket that still has unread bytes makes the kernel
 * send a reset, and a client still uploading then sees the reset instead of the answer. So the bytes past the bound
 * are read and dropped until the body ends or DRAIN_BYTES were dropped (a client that sends more than that is not
 * waiting for an answer), and only then does the endpoint answer, closing the connection if the body did not end.
 */
import type { IncomingMessage } from 'node:http';
import { SluiceError, type AnyErrorCode } from '../errors.ts';

/** The most the endpoint reads and drops of a body it refuses. */
export const DRAIN_BYTES = 64 * 1024;

/** The HTTP status a refusal carries in its details (the code alone would say 400). */
export const TOO_LARGE_STATUS = 413;

/**
 * A JSON object body of at most `max` bytes; anything else is refused with the endpoint's own `code`, naming the
 * `shape` it expects (each caller says both: no endpoint borrows another's error). A body over `max` is refused with
 * details.httpStatus 413; the caller answers with `connection: close` when `req.complete` is still false.
 */
export async function readJsonBody(
  req: IncomingMessage,
  max: number,
  code: AnyErrorCode,
  shape: string,
): Promise<Record<string, unknown>> {
  return parseJsonObject(await readBodyBytes(req, max, code), code, shape);
}

/** A JSON object out of `bytes`, or the endpoint's own `code` naming the `shape` it expects. */
export function parseJsonObject(bytes: Uint8Array, code: AnyErrorCode, shape: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new SluiceError(code, `body must be a JSON object ${shape}`);
  }
}

/**
 * A body's exact bytes (at most `max`; a signed body is checked over them), refused like readJsonBody's when larger.
 */
export function readBodyBytes(req: IncomingMessage, max: number, code: AnyErrorCode): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () =>
      new SluiceError(code, `body larger than ${max} bytes`, { details: { httpStatus: TOO_LARGE_STATUS } });
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= max) {
        chunks.push(chunk);
        return;
      }
      chunks.length = 0;
      if (size - max < DRAIN_BYTES) return;
      // Enough dropped: stop reading and answer; the connection closes after the answer.
      done();
      req.pause();
      reject(tooLarge());
    };
    const onEnd = (): void => {
      done();
      if (size > max) return reject(tooLarge());
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
