// tier: fast
/** What a failed write says (db/errors.ts): pg's own words for a broken connection, SQLSTATE classes, own throws. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { classifyDbError, databaseVerdict } from '../../src/fleet/db/errors.ts';

const coded = (code: string) => Object.assign(new Error(code), { code });

test("pg's words for a connection that broke, ended or never came are the database away", () => {
  for (const words of [
    'Connection terminated unexpectedly',
    'Client has encountered a connection error and is not queryable',
    'Client was closed and is not queryable',
    'Query read timeout',
    'timeout expired',
    'timeout exceeded when trying to connect',
  ])
    assert.is(classifyDbError(new Error(words)), 'unreachable', words);
  assert.is(classifyDbError(coded('ECONNREFUSED')), 'unreachable');
  assert.is(classifyDbError(coded('57P01')), 'unreachable');
});

test("the database's verdicts: a conflict is run again, any other class refuses the message", () => {
  assert.is(classifyDbError(coded('40001')), 'conflict');
  assert.is(classifyDbError(coded('54001')), 'refused');
  assert.is(classifyDbError(coded('22003')), 'refused');
  assert.ok(databaseVerdict(coded('54001')));
  assert.not.ok(databaseVerdict(coded('ECONNRESET')));
  assert.not.ok(databaseVerdict(new RangeError('Maximum call stack size exceeded')));
  assert.is(classifyDbError(new RangeError('Maximum call stack size exceeded')), 'refused');
});

test.run();
