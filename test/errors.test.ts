// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, SluiceError, isErrorCode, isSluiceError, toSluiceError } from '../src/errors.ts';

test('SluiceError carries a stable code, message and cause', () => {
  const cause = new Error('disk full');
  const err = new SluiceError('ERR_JOURNAL_WRITE', 'cannot append', { cause });
  assert.is(err.code, 'ERR_JOURNAL_WRITE');
  assert.is(err.message, 'cannot append');
  assert.is(err.cause, cause);
  assert.ok(err instanceof Error);
  assert.equal(err.toJSON(), { code: 'ERR_JOURNAL_WRITE', message: 'cannot append' });
  assert.ok(isSluiceError(err, 'ERR_JOURNAL_WRITE'));
  assert.not.ok(isSluiceError(err, 'ERR_JOURNAL_READ'));
});

test('toSluiceError wraps foreign errors with a fallback code and keeps SluiceErrors', () => {
  const wrapped = toSluiceError(new TypeError('boom'));
  assert.is(wrapped.code, 'ERR_INTERNAL');
  assert.is(wrapped.message, 'boom');
  const same = new SluiceError('ERR_CONFIG_INVALID', 'x');
  assert.is(toSluiceError(same), same);
  assert.is(toSluiceError('text', 'ERR_UBUS_HANDLER').code, 'ERR_UBUS_HANDLER');
});

test('isErrorCode narrows text to the codes of the table, and only those', () => {
  assert.ok(isErrorCode('ERR_SESSION_NOT_FOUND'));
  assert.not.ok(isErrorCode('ERR_OTHER'));
  assert.not.ok(isErrorCode('err_session_not_found'));
});

/** The codes in the first column of docs/errors.md's tables (a row may name two: `A` / `B`). */
function documentedCodes(): string[] {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  return doc
    .split('\n')
    .filter((line) => line.startsWith('| `ERR_'))
    .flatMap((line) => [...line.split('|')[1]!.matchAll(/`(ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]!));
}

test('ERROR_CODES and docs/errors.md list the same codes, each once', () => {
  const documented = documentedCodes();
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'a code twice in ERROR_CODES');
  assert.equal(new Set(documented).size, documented.length, 'a code documented twice');
  const table = new Set<string>(ERROR_CODES);
  assert.equal(
    documented.filter((c) => !table.has(c)),
    [],
    'documented but not in ERROR_CODES',
  );
  const doc = new Set(documented);
  assert.equal(
    ERROR_CODES.filter((c) => !doc.has(c)),
    [],
    'in ERROR_CODES but not documented',
  );
});

test.run();
