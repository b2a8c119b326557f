// tier: fast
/**
 * docs/operations.md "State files" is storage/verdicts.ts in words: every kind of file has its row, each harm's
 * outcome, the door, the copy and the seal as the table declares them (a verdict changed without its row fails here).
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FILE_KINDS, HARMS, type FileKind } from '../../src/storage/verdicts.ts';

const DOC = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');

/** The row the docs hold for a kind, up to its last column (the why, in the docs' own words). */
export function rowStart(kind: FileKind): string {
  const v = FILE_KINDS[kind];
  const seal = v.seal === 'none' ? 'none' : v.seal === 'beside' ? 'beside' : 'state dir';
  const harms = HARMS.map((h) => v.on[h]).join(' | ');
  return `| \`${kind}\` | ${harms} | ${v.door} | ${v.copy ? 'kept' : 'never'} | ${seal} |`;
}

test('every kind of state file has its row in docs/operations.md, as its verdict declares', () => {
  for (const kind of Object.keys(FILE_KINDS) as FileKind[]) assert.ok(DOC.includes(rowStart(kind)), rowStart(kind));
});

test.run();
