import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SluiceError, isSluiceError, toSluiceError } from '../src/errors.ts';

test('SluiceError carries a stable code, message and cause', () => {
  const cause = new Error('disk full');
  const err = new SluiceError('ERR_JOURNAL_WRITE', 'cannot append', { cause });
  assert.is(err.code, 'ERR_JOURNAL_WRITE');
  assert.is(err.message, 'cannot append');
  assert.is(err.cause, cause);
  assert.ok(err instanceof Error);
  assert.equal(err.toJSON(), { code: 'ERR_JOURNAL_WRITE', message: 'cannot append' });
  assert.ok(isSluiceError(err, 'ERR_JOURNAL_WRITE'));
  assert.not.ok(isSluiceError(err, 'ERR_OTHER'));
});

test('toSluiceError wraps foreign errors with a fallback code and keeps SluiceErrors', () => {
  const wrapped = toSluiceError(new TypeError('boom'));
  assert.is(wrapped.code, 'ERR_INTERNAL');
  assert.is(wrapped.message, 'boom');
  const same = new SluiceError('ERR_X', 'x');
  assert.is(toSluiceError(same), same);
  assert.is(toSluiceError('text', 'ERR_Y').code, 'ERR_Y');
});

test.run();
