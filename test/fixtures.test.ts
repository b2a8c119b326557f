// tier: fast
// The captures under test/fixtures/ are real output of the portals, nft, ubusd, FreeRADIUS and the specs' vectors,
// and test/storage/fixtures/ holds state files an earlier version wrote, byte for byte: a formatter run over test/
// once rewrote the JSON ones and the parsers then read text no portal prints. Each file's SHA-256 is listed in
// test/fixtures.sha256; a new or changed capture is added to that list on purpose, in test/:
// `find fixtures storage/fixtures -type f | LC_ALL=C sort | xargs sha256sum > fixtures.sha256`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const TEST = new URL('./', import.meta.url).pathname;
const DIRS = ['fixtures', 'storage/fixtures'];
const LIST = new URL('./fixtures.sha256', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [relative(TEST, join(dir, e.name))],
  );
}

const listed = new Map(
  readFileSync(LIST, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [hash, path] = l.split(/ {2}/) as [string, string];
      return [path, hash];
    }),
);

test('every capture is listed, and each is byte for byte what was captured', () => {
  const present = DIRS.flatMap((d) => files(join(TEST, d))).sort();
  assert.equal(present, [...listed.keys()].sort(), 'the files present are the files listed');
  const changed = present.filter(
    (path) =>
      createHash('sha256')
        .update(readFileSync(join(TEST, path)))
        .digest('hex') !== listed.get(path),
  );
  assert.equal(changed, [], 'captures whose bytes differ from test/fixtures.sha256');
});

test.run();
