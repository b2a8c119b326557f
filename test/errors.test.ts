// tier: fast
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import {
  ERROR_CODES,
  SluiceError,
  httpStatusOf,
  isErrorCode,
  isSluiceError,
  methodErrors,
  toSluiceError,
  ubusStatusOf,
} from '../src/errors.ts';

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

test("a method's own codes answer with the statuses it declared; a code of the table or taken is refused", () => {
  const codes = methodErrors({ ERR_TEST_ONLY_CODE: ['PERMISSION_DENIED', 402] });
  const err = new SluiceError(codes.ERR_TEST_ONLY_CODE, 'punched');
  assert.equal(
    [err.code, ubusStatusOf(err.code), httpStatusOf(err.code)],
    ['ERR_TEST_ONLY_CODE', 'PERMISSION_DENIED', 402],
  );
  assert.not.ok(isErrorCode(err.code), 'not a code of the table');
  assert.throws(() => methodErrors({ ERR_TEST_ONLY_CODE: ['TIMEOUT', 504] }), /declared already/);
  assert.throws(() => methodErrors({ ERR_INTERNAL: ['TIMEOUT', 504] }), /declared already/);
  assert.throws(() => methodErrors({ err_lower: ['TIMEOUT', 504] }), /ERR_ followed by capitals/);
  assert.is(httpStatusOf('ERR_NOBODY_DECLARED'), 500);
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
