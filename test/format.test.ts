// tier: fast
// The formatting rules (docs/testing.md "Formatting"): prettier formats the code (`npm run format`; `npm test` runs
// `npm run format:check` before the tiers, so CI fails on a file prettier would change), and every line of src/,
// workers/, test/, bench/ and scripts/ is at most 120 columns, which prettier alone does not give: it leaves comments
// and strings as written (scripts/wrap-comments.ts rewraps comments; a long string is split with `+`).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = new URL('../', import.meta.url).pathname;
const LIMIT = 120;
const FOLDERS = ['src', 'workers', 'test', 'bench', 'scripts'];
const CODE = /\.(ts|mts|mjs)$/;

function codeFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(path).isDirectory()) out.push(...codeFiles(path));
    else if (CODE.test(name)) out.push(path);
  }
  return out;
}

test(`every line of ${FOLDERS.join('/, ')}/ is at most ${LIMIT} columns`, () => {
  const over: string[] = [];
  for (const file of FOLDERS.flatMap((f) => codeFiles(join(ROOT, f)))) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const columns = [...line].length;
        if (columns > LIMIT) over.push(`${relative(ROOT, file)}:${i + 1} (${columns})`);
      });
  }
  assert.equal(
    over,
    [],
    `${over.length} lines over ${LIMIT} columns (npm run format rewraps comments):\n${over.join('\n')}`,
  );
});

test('prettier is configured for the same limit, and npm test checks it before the tiers run', () => {
  const config = JSON.parse(readFileSync(join(ROOT, '.prettierrc.json'), 'utf8')) as { printWidth: number };
  assert.is(config.printWidth, LIMIT);
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
    .scripts;
  assert.match(scripts['format:check']!, /^prettier --check /);
  for (const folder of FOLDERS) assert.ok(scripts['format:check']!.includes(folder), `format:check covers ${folder}/`);
  assert.match(scripts['test']!, /npm run format:check && .*node test\/run\.mjs/);
});

test.run();
