// uvu 0.5 loses the error of a throwing before/after hook: its runner's `finally` block returns, which discards the
// exception, so a file whose setup failed reports "(0 / N)" and nothing else (test/run.mjs counts it failed, but
// nobody can tell why: CI's upto-daemon run showed only a 180 s duration). mendUvu rewrites that one spot of uvu's
// runner, so a hook's error is reported like a failing test's: test/helpers/uvu-hook-errors.mjs as uvu loads in a
// file run through tsx, test/helpers/bundle.mjs as it bundles a fast file.

const RUNNER_FINALLY = "\t} finally {\n\t\tstate.__test__ = '';";
const REPORTED =
  "\t} catch (err) {\n\t\tif (errors.length) errors += '\\n';\n\t\terrors += format(`${state.__test__ || 'a " +
  "before hook'} (hook or setup)`, err, name);\n" +
  RUNNER_FINALLY;

// SLUICE_TEST_PROFILE=1: each test's and each suite's before/after hooks' wall time, as `# [profile] …` lines
// (test/run.mjs shows them for a green file too), to find where a slow file's time goes.
const HANDLER = '\t\t\t\tawait test.handler(state);';
const TIMED_HANDLER =
  '\t\t\t\tconst t0 = Date.now(); await test.handler(state);\n' +
  '\t\t\t\tconsole.log(`\n# [profile] ${Date.now() - t0} ms ${name} > ${test.name}`);';
const BEFORE = '\t\tfor (hook of before) await hook(state);';
const TIMED_BEFORE =
  '\t\tconst b0 = Date.now(); for (hook of before) await hook(state);\n' +
  '\t\tconsole.log(`\n# [profile] ${Date.now() - b0} ms ${name} > before`);';
const AFTER = '\t\tfor (hook of after) await hook(state);';
const TIMED_AFTER =
  '\t\tconst a0 = Date.now(); for (hook of after) await hook(state);\n' +
  '\t\tconsole.log(`\n# [profile] ${Date.now() - a0} ms ${name} > after`);';
const profile = Boolean(process.env.SLUICE_TEST_PROFILE);

/** uvu's runner module, the one file mendUvu rewrites. */
export const UVU_RUNNER = /\/uvu\/dist\/index\.mjs$/;

/** uvu's runner source (`where` names it in an error) with the hook errors reported, and timed under the profile. */
export function mendUvu(source, where) {
  // An uvu that no longer has this spot must be looked at again, not silently left as it was.
  if (!source.includes(RUNNER_FINALLY))
    throw new Error(`test/helpers/uvu-mend.mjs: uvu's runner changed (${where}); see that file`);
  let mended = source.replace(RUNNER_FINALLY, REPORTED);
  if (profile) {
    for (const spot of [HANDLER, BEFORE, AFTER]) {
      if (!mended.includes(spot)) throw new Error(`uvu-mend.mjs: uvu's runner changed (${where}): ${spot}`);
    }
    mended = mended.replace(HANDLER, TIMED_HANDLER).replace(BEFORE, TIMED_BEFORE).replace(AFTER, TIMED_AFTER);
  }
  return mended;
}
