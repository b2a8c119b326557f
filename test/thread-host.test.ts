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
test.after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A module for a thread: prints one JSON line of what it saw, after using `cpuMs` of its thread's own CPU (Linux
 * /proc/thread-self/stat, user + sys in ticks of 10 ms), however busy the machine.
 */
function file(name: string, cpuMs: number): string {
  const path = join(dir, `${name}.mjs`);
  writeFileSync(
    path,
    [
      'const seen = { leftover: globalThis.__leftover ?? null, env: process.env.SLUICE_THREAD_MARK ?? null };',
      `globalThis.__leftover = ${JSON.stringify(name)};`,
      `process.env.SLUICE_THREAD_MARK = ${JSON.stringify(name)};`,
      'seen.execArgv = process.execArgv;',
      "import { readFileSync } from 'node:fs';",
      'const ticks = () => { const s = readFileSync("/proc/thread-self/stat", "utf8");',
      '  const f = s.slice(s.lastIndexOf(")") + 2).split(" "); return Number(f[11]) + Number(f[12]); };',
      'const start = ticks(); let n = 0;',
      `while ((ticks() - start) * 10 < ${cpuMs}) for (let i = 0; i < 1e5; i++) n += i;`,
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
  const host = new ThreadHost({ cwd: repo, env: { ...process.env } });
  try {
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
  } finally {
    await host.close();
  }
});

test('two files at once in one host (beside the lanes while a core idles): neither sees the other', async () => {
  const host = new ThreadHost({ cwd: repo, env: { ...process.env } });
  try {
    const [a, b] = await Promise.all([host.run(file('a', 200), 30_000), host.run(file('b', 200), 30_000)]);
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
  } finally {
    await host.close();
  }
});

test("the host's CPU split: a busy file's CPU is counted in the files' threads, not in the helpers", async () => {
  const host = new ThreadHost({ cwd: repo, env: { ...process.env } });
  try {
    const run = await host.run(file('busy', 300), 30_000);
    assert.is(run.code, 0, run.text);
    const split = host.cpuSplitMs();
    assert.ok(split !== null, 'split read from /proc');
    assert.ok(split.files >= 300, `files' threads ${split.files} ms`);
    assert.ok(split.helpers < split.files, `helpers ${split.helpers} ms`);
    const closed = await host.close();
    assert.ok(closed !== null && closed.files >= split.files, 'close hands back the split');
  } finally {
    await host.close();
  }
});

test.run();
