// tier: fast
// The fast tier's thread hosts (test/helpers/thread-pool.mjs, thread-host.mjs, thread-file.mjs; docs/testing.md "The
// edit loop"): files run one after another in a worker thread, each with module instances of its own (src/'s, the
// test helpers' and the packages', but for the few packages a thread's files share: test/helpers/bundle.mjs), until one
// leaves something behind (a global, a listener, process.env, an unref'd timer), after which the next file gets a new
// thread; what the thread can make new itself (Node's fetch dispatcher, its connections kept alive) it puts back, and
// what a helper gives back as its file ends (test/helpers/file-end.mjs) is given back before the thread looks; each
// file's output and exit status are its own, a file past its timeout has its thread terminated, files run at once see
// none of each other's globals, the threads run with the hosts' V8 flags, and the host's split counts a file's CPU in
// the files' threads, apart from V8's and libuv's helper threads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleTests } from './helpers/bundle.mjs';
import { CACHE_DIR, cacheFile } from './helpers/bundle-linker.mjs';
import { ThreadHost, type ThreadRun } from './helpers/thread-pool.mjs';

const repo = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sluice-thread-host-'));
/** test/helpers/thread-probe.ts bundled as a fast file is, with its build's slots. */
const probeBuild = await bundleTests([join(repo, 'test', 'helpers', 'thread-probe.ts')], repo);
const probe = [...probeBuild.outputs.values()][0] as string;
/** A slotted script's path for a thread's k-th file (k ≥ 2): a copy of it, as a bundle's slots are. */
const copies = (path: string): string[] =>
  Array.from({ length: 15 }, (_, i) => path.replace(/\.mjs$/, `-${i + 1}.mjs`));
/** The scripts with copies (slotted); any other runs as a new thread's first file. */
const withCopies = new Set<string>();
/** One host for the tests, as a run's lane is: files one after another in a thread, or at once in threads of it. */
const host = new ThreadHost({
  cwd: repo,
  env: { ...process.env },
  slots: (module) => (withCopies.has(module) ? copies(module) : probeBuild.slots(module)),
});
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

/** A module for a thread: `lines` of JavaScript in a file of the test's directory. */
function script(name: string, ...lines: string[]): string {
  const path = join(dir, `${name}.mjs`);
  writeFileSync(path, lines.join('\n'));
  return path;
}

/** A module for a thread, as script(), with a copy for each slot: a thread runs it after another file. */
function slotted(name: string, ...lines: string[]): string {
  const path = script(name, ...lines);
  for (const copy of copies(path)) writeFileSync(copy, lines.join('\n'));
  withCopies.add(path);
  return path;
}

/** What the probe printed: the module state it found, and its thread. */
const probed = (run: ThreadRun) =>
  JSON.parse(run.text.trim().split('\n').at(-1) as string) as {
    thread: number;
    damaged: Record<string, number>;
    tails: string;
    packageMarks: number;
    sharedMarks: number;
    lazyImports: number;
    lazyFrom: string;
  };

/** The probe's build, and the URL of its dynamically imported chunk in `root` (that build or a copy of it). */
const probeRoot = probe.slice(0, probe.lastIndexOf('/test/'));
const lazyChunk = (root: string) =>
  pathToFileURL(
    join(
      root,
      'chunks',
      readdirSync(join(probeRoot, 'chunks')).find((n) => n.startsWith('thread-probe-lazy-') && n.endsWith('.mjs'))!,
    ),
  ).href;

test('files one after another in a thread: each imports its modules anew, packages but the shared too', async () => {
  const root = probeRoot;
  const cached = readdirSync(join(root, 'chunks'))
    .filter((name) => name.endsWith('.mjs'))
    .map((name) => cacheFile(join(root, 'chunks', name), readFileSync(join(root, 'chunks', name), 'utf8')))
    .filter((f) => f !== null);
  assert.ok(cached.length > 0, 'the probe has chunks without an import()');
  for (const f of cached) rmSync(f, { force: true });
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await host.run(probe, 30_000));
  for (const [i, run] of runs.entries()) {
    assert.is(run.code, 0, run.text);
    assert.is(run.left, null, `the probe leaves nothing behind: ${run.left}`);
    assert.equal(
      probed(run),
      {
        thread: runs[0]!.thread,
        damaged: {},
        tails: '',
        packageMarks: 0,
        sharedMarks: i,
        lazyImports: 3,
        lazyFrom: lazyChunk(root),
      },
      `file ${i + 1}: ${run.text}`,
    );
  }
  assert.equal(
    runs.map((r) => r.files),
    [runs[0]!.files, runs[0]!.files + 1, runs[0]!.files + 2],
    'one thread ran the three',
  );
  assert.equal(
    cached.filter((f) => !existsSync(f)),
    [],
    "V8's code cache of each chunk without an import(), written for the next thread and run (bundle-linker.mjs)",
  );
});

test("a stack trace names the build a file ran from, when another build's chunk had the same text", async () => {
  // An older build of the same files, as an edit leaves beside the new one: its chunk is compiled first.
  const older = `${probeRoot}older`;
  cpSync(probeRoot, older, { recursive: true, verbatimSymlinks: true });
  rmSync(join(older, CACHE_DIR), { recursive: true, force: true });
  try {
    const first = await host.run(older + probe.slice(probeRoot.length), 30_000);
    assert.is(first.code, 0, first.text);
    assert.is(probed(first).lazyFrom, lazyChunk(older));
  } finally {
    rmSync(older, { recursive: true, force: true });
  }
  for (let i = 0; i < 2; i++) {
    const run = await host.run(probe, 30_000);
    assert.is(run.code, 0, run.text);
    assert.is(probed(run).lazyFrom, lazyChunk(probeRoot), `file ${i + 1} after the older build's`);
  }
});

test("a code cache V8 rejects (another Node's, other flags', torn) is compiled without and written again", async () => {
  const caches = readdirSync(join(probeRoot, CACHE_DIR)).map((name) => join(probeRoot, CACHE_DIR, name));
  assert.ok(caches.length > 0, 'the probe has code caches');
  const torn = Buffer.from('not a cache V8 made for this build');
  for (const f of caches) writeFileSync(f, torn);
  // A host of its own: its threads' first compile of each chunk reads the files above.
  const fresh = new ThreadHost({ cwd: repo, env: { ...process.env }, slots: probeBuild.slots });
  try {
    for (let i = 0; i < 2; i++) {
      const run = await fresh.run(probe, 30_000);
      assert.is(run.code, 0, run.text);
      assert.is(probed(run).lazyImports, 3, run.text);
    }
  } finally {
    await fresh.close();
  }
  assert.equal(
    caches.filter((f) => readFileSync(f).equals(torn)),
    [],
    'each rejected cache written again',
  );
});

test("a file changes V8's flags while a thread holds code caches: the next file compiles what V8 rejects", async () => {
  // V8's flags are the process's, and one of them is in every code cache's check (src/heap-release.ts sets
  // --expose-gc for a moment, beside the other lanes' files): a cache taken before is rejected until they are back.
  const first = await host.run(probe, 30_000);
  assert.is(first.code, 0, first.text);
  const setter = await host.run(
    slotted('flag-set', "import { setFlagsFromString } from 'node:v8';", "setFlagsFromString('--expose-gc');"),
    30_000,
  );
  assert.is(setter.thread, first.thread, 'the same thread');
  const under = await host.run(probe, 30_000);
  assert.is(under.code, 0, under.text);
  assert.is(under.thread, first.thread, 'the same thread, its caches taken under the other flags');
  assert.is(probed(under).lazyImports, 3, under.text);
  const reset = await host.run(
    slotted('flag-reset', "import { setFlagsFromString } from 'node:v8';", "setFlagsFromString('--no-expose-gc');"),
    30_000,
  );
  assert.is(reset.code, 0, reset.text);
  const after = await host.run(probe, 30_000);
  assert.is(after.code, 0, after.text);
});

const leavers = {
  'a global': ['globalThis.leftBehind = 1;', 'globalThis.leftBehind added'],
  'a process listener': ["process.on('SIGUSR2', () => {});", "a process 'SIGUSR2' listener"],
  'a change to process.env': ["process.env.SLUICE_LEFT_BEHIND = '1';", 'process.env.SLUICE_LEFT_BEHIND'],
  "an unref'd timer": ['setTimeout(() => {}, 60_000).unref();', "an unref'd Timeout still running"],
  'Math.random replaced': ['Math.random = () => 0.5;', 'Math.random changed'],
  "a fetch dispatcher not Node's own": [
    "globalThis[Symbol.for('undici.globalDispatcher.1')] = { dispatch: () => true, destroy: async () => {} };",
    'globalThis.Symbol(undici.globalDispatcher.1) added',
  ],
} as const;

for (const [what, [line, reported]] of Object.entries(leavers)) {
  test(`a file that leaves ${what} behind ends its thread: the next file gets a new one`, async () => {
    // A file that leaves nothing: the next file runs in its thread.
    const clean = await host.run(script('clean', "console.log('clean');"), 30_000);
    const afterClean = await host.run(slotted('after-clean', "console.log('after');"), 30_000);
    assert.is(afterClean.thread, clean.thread, 'the thread of a file that left nothing runs the next');
    const leaver = await host.run(script('leaver', line, "console.log('left');"), 30_000);
    assert.is(leaver.code, 0, leaver.text);
    assert.is(leaver.text, 'left\n');
    assert.equal(leaver.left, [reported]);
    const next = await host.run(slotted('next', "console.log('next');"), 30_000);
    assert.is(next.code, 0, next.text);
    assert.is.not(next.thread, leaver.thread, `the file after it ran in its thread (${what})`);
  });
}

test(
  "a file that fetched (Node's dispatcher, its connection kept alive): its thread puts a new dispatcher in its " +
    'place and runs the next file, whose fetch goes through it',
  async () => {
    const fetcher = slotted(
      'fetcher',
      "import { createServer } from 'node:http';",
      "const server = createServer((_, res) => res.end('hi'));",
      "await new Promise((r) => server.listen(0, '127.0.0.1', r));",
      'const url = `http://127.0.0.1:${server.address().port}/`;',
      'const texts = [await (await fetch(url)).text(), await (await fetch(url)).text()];',
      "const kept = Object.getOwnPropertySymbols(globalThis).some((s) => String(s).includes('globalDispatcher'));",
      'server.close();',
      'console.log(JSON.stringify({ texts, kept }));',
    );
    const first = await host.run(fetcher, 30_000);
    const second = await host.run(fetcher, 30_000);
    for (const run of [first, second]) {
      assert.is(run.code, 0, run.text);
      assert.is(run.left, null, `left: ${run.left}`);
      assert.is(run.text, `${JSON.stringify({ texts: ['hi', 'hi'], kept: true })}\n`);
    }
    assert.is(second.thread, first.thread, 'one thread ran both');
  },
);

test('what a helper gives back as its file ends (helpers/file-end.mjs) is given back before the check', async () => {
  const given = join(dir, 'given-back');
  const giver = script(
    'giver',
    `import { atFileEnd } from ${JSON.stringify(join(repo, 'test', 'helpers', 'file-end.mjs'))};`,
    "import { writeFileSync } from 'node:fs';",
    `atFileEnd(() => writeFileSync(${JSON.stringify(given)}, 'yes'));`,
  );
  const run = await host.run(giver, 30_000);
  assert.is(run.code, 0, run.text);
  assert.is(run.left, null, `left: ${run.left}`);
  assert.is(readFileSync(given, 'utf8'), 'yes');
  const next = await host.run(probe, 30_000);
  assert.is(next.thread, run.thread, 'the thread runs the next file');
});

test('each file gets its own output and exit status, in a thread that ran another file', async () => {
  const failing = await host.run(
    script(
      'failing',
      "console.log('one');",
      "process.stdout.write('two\\n');",
      'await new Promise((r) => setTimeout(r, 20));',
      "console.error('three');",
      // uvu's way to fail a file: the status it exits with, unless the thread is reused.
      'process.exitCode = 3;',
    ),
    30_000,
  );
  assert.is(failing.code, 3, failing.text);
  assert.is(failing.text, 'one\ntwo\nthree\n');
  assert.is(failing.left, null);
  const next = await host.run(probe, 30_000);
  assert.is(next.thread, failing.thread, 'the same thread');
  assert.is(next.code, 0, 'exit status');
  assert.is(next.text, `${JSON.stringify(probed(next))}\n`, 'output');
  const thrown = await host.run(script('thrown', "console.log('before');", "throw new Error('at load');"), 30_000);
  assert.is(thrown.code, 1);
  assert.match(thrown.text, /^before\n[^]*Error: at load/);
});

test("a file past the runner's timeout has its thread terminated, and the next file runs", async () => {
  const before = await host.run(probe, 30_000);
  // Hung without spinning: a thread blocked for good is terminated the same way, and 2 s of it cost no CPU (a busy
  // machine took more than 500 ms to start a file that spun, which then timed out before its first line).
  const hang = 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);';
  const hung = await host.run(script('hung', "console.log('hanging');", hang), 2000);
  assert.ok(hung.timedOut, 'timed out');
  assert.match(hung.text, /^hanging\n[^]*timed out after 2000 ms: its thread was terminated/);
  const next = await host.run(probe, 30_000);
  assert.is(next.code, 0, next.text);
  assert.is.not(next.thread, hung.thread);
  assert.ok(before.code === 0);
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
