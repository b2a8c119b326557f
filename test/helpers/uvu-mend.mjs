// uvu 0.5 loses the error of a throwing before/after hook: its runner's `finally` block returns, which discards the
// exception, so a file whose setup failed reports "(0 / N)" and nothing else (test/run.mjs counts it failed, but
// nobody can tell why: CI's upto-daemon run showed only a 180 s duration). mendUvu rewrites that spot of uvu's runner,
// so a hook's error is reported like a failing test's, and each report ends with the peers' last log lines (below):
// test/helpers/uvu-hook-errors.mjs as uvu loads in a file run through tsx, test/helpers/bundle.mjs as it bundles a
// fast file.

const RUNNER_FINALLY = "\t} finally {\n\t\tstate.__test__ = '';";
const REPORTED =
  "\t} catch (err) {\n\t\tif (errors.length) errors += '\\n';\n\t\terrors += format(`${state.__test__ || 'a " +
  "before hook'} (hook or setup)`, err, name);\n\t\terrors += globalThis.__sluiceLogTails?.() ?? '';\n" +
  RUNNER_FINALLY;

// SLUICE_TEST_PROFILE=1: each test's and each suite's before/after hooks' wall time and the CPU time of the thread
// that ran it (Linux /proc/thread-self: the file's own, whatever else the machine runs; 10 ms steps), as
// `# [profile] …` lines (test/run.mjs shows them for a green file too), to find where a slow file's time goes.
const CPU_MS =
  "import { readFileSync as readProc } from 'node:fs';\n" +
  'const cpuMs = () => { try { const s = readProc("/proc/thread-self/stat", "utf8"); ' +
  'const f = s.slice(s.lastIndexOf(")") + 2).split(" "); return (Number(f[11]) + Number(f[12])) * 10; } ' +
  'catch { return NaN; } };\n';
const timed = (label) =>
  `console.log(\`\\n# [profile] \${Date.now() - t0} ms, cpu \${cpuMs() - c0} ms \${name} > ${label}\`);`;
const HANDLER = '\t\t\t\tawait test.handler(state);';
const TIMED_HANDLER =
  '\t\t\t\t{ const t0 = Date.now(), c0 = cpuMs(); await test.handler(state);\n' + `\t\t\t\t${timed('${test.name}')} }`;
const BEFORE = '\t\tfor (hook of before) await hook(state);';
const TIMED_BEFORE =
  '\t\t{ const t0 = Date.now(), c0 = cpuMs(); for (hook of before) await hook(state);\n' + `\t\t${timed('before')} }`;
const AFTER = '\t\tfor (hook of after) await hook(state);';
const TIMED_AFTER =
  '\t\t{ const t0 = Date.now(), c0 = cpuMs(); for (hook of after) await hook(state);\n' + `\t\t${timed('after')} }`;
// A failing test's report ends with the last lines of every peer log still open (test/helpers/log-tails.ts sets the
// global as it loads): a daemon that left a method out at a restart says why there, and CI shows nothing else.
const FAILED = '\t\t\t\terrors += format(test.name, err, name);';
const FAILED_WITH_TAILS = `${FAILED}\n\t\t\t\terrors += globalThis.__sluiceLogTails?.() ?? '';`;
const profile = Boolean(process.env.SLUICE_TEST_PROFILE);

// A file's uvu keeps its queue of suites to itself and takes its exit listener (which reports a run cut short) off
// once its run ended, when the listener has nothing left to say: uvu's own queue is a global, and a worker thread that
// runs several files one after another (test/helpers/thread-file.mjs) would run the first file's suites again in the
// second, and count each file's listener as something it left behind.
const QUEUE = 'globalThis.UVU_QUEUE = globalThis.UVU_QUEUE || [];';
const OWN_QUEUE = 'const UVU_QUEUE = globalThis.UVU_QUEUE || [];';
const EXIT_LISTENER =
  "if (isNode) process.on('exit', () => {\n\tif (!isRunning) return; // okay to exit\n" +
  "\tprocess.exitCode = process.exitCode || 1;\n\tconsole.error('Exiting early before testing is finished.');\n});";
const NAMED_EXIT_LISTENER =
  'function exitedEarly() {\n\tif (!isRunning) return; // okay to exit\n' +
  "\tprocess.exitCode = process.exitCode || 1;\n\tconsole.error('Exiting early before testing is finished.');\n}\n" +
  "if (isNode) process.on('exit', exitedEarly);";
const RUN_END = '\tif (isNode) process.exitCode = code;';
const RUN_END_UNLISTENED = `${RUN_END}\n\tif (isNode) process.off('exit', exitedEarly);`;

/** uvu's runner module, the one file mendUvu rewrites. */
export const UVU_RUNNER = /\/uvu\/dist\/index\.mjs$/;

/** uvu's runner source (`where` names it in an error) with the hook errors reported, and timed under the profile. */
export function mendUvu(source, where) {
  // An uvu that no longer has this spot must be looked at again, not silently left as it was.
  if (!source.includes(RUNNER_FINALLY))
    throw new Error(`test/helpers/uvu-mend.mjs: uvu's runner changed (${where}); see that file`);
  if (!source.includes(FAILED))
    throw new Error(`test/helpers/uvu-mend.mjs: uvu's runner changed (${where}): ${FAILED}`);
  for (const spot of [QUEUE, EXIT_LISTENER, RUN_END])
    if (!source.includes(spot)) throw new Error(`test/helpers/uvu-mend.mjs: uvu's runner changed (${where}): ${spot}`);
  let mended = source
    .replace(RUNNER_FINALLY, REPORTED)
    .replace(FAILED, FAILED_WITH_TAILS)
    .replace(QUEUE, OWN_QUEUE)
    .replace(EXIT_LISTENER, NAMED_EXIT_LISTENER)
    .replace(RUN_END, RUN_END_UNLISTENED);
  if (profile) {
    for (const spot of [HANDLER, BEFORE, AFTER]) {
      if (!mended.includes(spot)) throw new Error(`uvu-mend.mjs: uvu's runner changed (${where}): ${spot}`);
    }
    mended = CPU_MS + mended.replace(HANDLER, TIMED_HANDLER).replace(BEFORE, TIMED_BEFORE).replace(AFTER, TIMED_AFTER);
  }
  return mended;
}
