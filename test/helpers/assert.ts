import * as assert from 'uvu/assert';
import { isSluiceError, type ErrorCode } from '../../src/errors.ts';

/** Awaits `promise` and asserts it rejects with a SluiceError of `code`. */
export async function rejectsWithCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isSluiceError(err, code), `expected ${code}, got ${String(err)}`);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** Runs `fn` and returns the SluiceError code it throws, or 'no error' (for tables of bad inputs). */
export function thrownCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isSluiceError(err), `expected a SluiceError, got ${String(err)}`);
    return err.code;
  }
  return 'no error';
}
