// tier: fast
/**
 * storage/json-table.ts on its own: writes coalesce (a flush asked while one waits joins it), and a write that fails
 * leaves the file as it was with the owner's write code. The behaviour each owner gets is json-table-suite.ts's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fsp from 'node:fs/promises';
import { isSluiceError } from '../../src/errors.ts';
import { JsonTable, type JsonTableFormat } from '../../src/storage/index.ts';
import { tempDirs } from '../helpers/temp.ts';
import { poolRequests } from '../helpers/pool-requests.ts';

const tempDir = tempDirs('sluice-jsontable-', test.after);

interface Row {
  id: string;
  n: number;
}
const FORMAT: JsonTableFormat<Row> = {
  code: 'ERR_X402_STORE',
  writeCode: 'ERR_X402_STORE',
  what: 'a test table',
  key: (r) => r.id,
  split: (json) => {
    if (!Array.isArray(json)) throw new TypeError('not a list');
    return { rows: json, extra: undefined };
  },
  row: (v) => {
    const r = v as Row;
    if (typeof r?.id !== 'string') throw new TypeError('no id');
    return r;
  },
  join: (rows) => rows,
  empty: () => undefined,
};

test('puts made while a write runs share the next one: 10 puts, at most 2 writes, all on flash', async () => {
  const path = join(tempDir(), 't.json');
  const table = await JsonTable.open(path, FORMAT);
  await Promise.all(Array.from({ length: 10 }, (_, i) => table.put({ id: `r${i}`, n: i })));
  assert.ok(table.writeCount <= 2, `${table.writeCount} writes`);
  assert.is((JSON.parse(readFileSync(path, 'utf8')) as Row[]).length, 10);
});

test("a write that fails rejects with the owner's write code and leaves the file as it was", async () => {
  const path = join(tempDir(), 't.json');
  const good = await JsonTable.open(path, FORMAT);
  await good.put({ id: 'a', n: 1 });
  const failing = await JsonTable.open(path, FORMAT, {
    fs: { ...fsp, rename: () => Promise.reject(new Error('EIO')) } as never,
  });
  failing.set({ id: 'b', n: 2 });
  await failing.flush().then(
    () => assert.unreachable('written'),
    (err: unknown) => assert.ok(isSluiceError(err, 'ERR_X402_STORE')),
  );
  assert.equal(JSON.parse(readFileSync(path, 'utf8')), [{ id: 'a', n: 1 }]);
  // The next flush is not stuck behind the failed one.
  await good.put({ id: 'c', n: 3 });
  assert.is((JSON.parse(readFileSync(path, 'utf8')) as Row[]).length, 2);
});

test("the start's open reads the table and its seal without the thread pool; a reload's on it", async () => {
  const path = join(tempDir(), 't.json');
  const table = await JsonTable.open(path, FORMAT);
  await table.put({ id: 'a', n: 1 });
  let rows: Row[] = [];
  const atStart = await poolRequests(
    async () => (rows = (await JsonTable.open(path, FORMAT, { atStart: true })).list()),
  );
  assert.equal(rows, [{ id: 'a', n: 1 }]);
  assert.is(atStart, 0, 'no request at the start');
  const atReload = await poolRequests(() => JsonTable.open(path, FORMAT));
  assert.ok(atReload >= 2, `${atReload} requests at a reload`);
});

test.run();
