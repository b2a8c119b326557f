// tier: fast
// The fast tier's thread hosts (test/helpers/thread-pool.mjs, thread-host.mjs; docs/testing.md "The edit loop"): each
// file in a worker thread of its own, which sees none of another file's globals or module state, runs with the hosts'
// V8 flags, and whose CPU the host's split counts in the files' threads, apart from V8's and libuv's helper threads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ThreadHost } from './helpers/thread-pool.mjs';

const repo = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sluice-thread-host-'));
/** One host for the tests, as a run's lane is: each file a thread of it, one after another or at once. */
const host = new ThreadHost({ cwd: repo, env: { ...process.env } });
test.after(async () => {
  await host.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A module for a thread: prints one JSON line of what it saw, after using `cpuMs` of its thread's own CPU (Linux
 * /proc/thread-self/stat, user + sys in ticks of 10 ms), however busy the machine, and, with `meet`, after that file
 * has started too (each leaves a mark in the directory and waits for the other's): both have set their globals and env
 * by then, so each reads them again while the other is running.
 */
function file(name: string, cpuMs: number, meet?: string): string {
  const path = join(dir, `${name}.mjs`);
  const mark = (who: string): string => JSON.stringify(join(dir, `${who}.started`));
  writeFileSync(
    path,
    [
      'const seen = { leftover: globalThis.__leftover ?? null, env: process.env.SLUICE_THREAD_MARK ?? null };',
      `globalThis.__leftover = ${JSON.stringify(name)};`,
      `process.env.SLUICE_THREAD_MARK = ${JSON.stringify(name)};`,
      'seen.execArgv = process.execArgv;',
      "import { existsSync, readFileSync, writeFileSync } from 'node:fs';",
      'const ticks = () => { const s = readFileSync("/proc/thread-self/stat", "utf8");',
      '  const f = s.slice(s.lastIndexOf(")") + 2).split(" "); return Number(f[11]) + Number(f[12]); };',
      'const start = ticks(); let n = 0;',
      `while ((ticks() - start) * 10 < ${cpuMs}) for (let i = 0; i < 1e5; i++) n += i;`,
      ...(meet === undefined
        ? []
        : [
            `writeFileSync(${mark(name)}, '');`,
            `while (!existsSync(${mark(meet)})) await new Promise((r) => setTimeout(r, 5));`,
          ]),
      'seen.after = { leftover: globalThis.__leftover, env: process.env.SLUICE_THREAD_MARK };',
      'console.log(JSON.stringify(seen));',
    ].join('\n'),
  );
  return path;
}

const seen = (text: string) =>
  JSON.parse(text.trim().split('\n').at(-1) as string) as {
    leftover: string;
    env: string;
    execArgv: string[];
    after: { leftover: string; env: string };
  };

test("a file sees no global or env change of the file before it, and runs with the host's V8 flags", async () => {
  const first = await host.run(file('first', 0), 30_000);
  const second = await host.run(file('second', 0), 30_000);
  assert.is(first.code, 0, first.text);
  assert.is(second.code, 0, second.text);
  assert.equal(seen(second.text).leftover, null, 'globals');
  assert.equal(seen(second.text).env, null, 'process.env');
  assert.ok(
    seen(second.text).execArgv.some((a) => a.startsWith('--interrupt-budget=')),
    `the host's V8 flags: ${seen(second.text).execArgv.join(' ')}`,
  );
});

test('two files at once in one host (beside the lanes while a core idles): neither sees the other', async () => {
  const [a, b] = await Promise.all([host.run(file('a', 0, 'b'), 30_000), host.run(file('b', 0, 'a'), 30_000)]);
  assert.is(a.code, 0, a.text);
  assert.is(b.code, 0, b.text);
  for (const [name, run] of [
    ['a', a],
    ['b', b],
  ] as const) {
    assert.equal(seen(run.text).leftover, null, `${name}: globals at its start`);
    assert.equal(seen(run.text).env, null, `${name}: process.env at its start`);
    assert.equal(seen(run.text).after, { leftover: name, env: name }, `${name}: its own at its end`);
  }
});

test("the host's CPU split: a busy file's CPU is counted in the files' threads, not in the helpers", async () => {
  const before = host.cpuSplitMs();
  const run = await host.run(file('busy', 300), 30_000);
  assert.is(run.code, 0, run.text);
  const split = host.cpuSplitMs();
  assert.ok(before !== null && split !== null, 'split read from /proc');
  assert.ok(split.files - before.files >= 300, `files' threads ${split.files - before.files} ms`);
  assert.ok(split.helpers < split.files, `helpers ${split.helpers} ms`);
  const closed = await host.close();
  assert.ok(closed !== null && closed.files >= split.files, 'close hands back the split');
});

test.run();
