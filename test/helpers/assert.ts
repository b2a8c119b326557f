import * as assert from 'uvu/assert';
import { isSluiceError } from '../../src/errors.ts';

/** Awaits `promise` and asserts it rejects with a SluiceError of `code`. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isSluiceError(err, code), `expected ${code}, got ${String(err)}`);
    return;
  }
  assert.unreachable(`expected ${code}`);
}
