// uvu 0.5 loses the error of a throwing before/after hook: its runner's `finally` block returns, which discards the
// exception, so a file whose setup failed reports "(0 / N)" and nothing else (test/run.mjs counts it failed, but
// nobody can tell why: CI's upto-daemon run showed only a 180 s duration). test/run.mjs preloads this file; it
// rewrites that one spot of uvu's runner as it loads, so a hook's error is reported like a failing test's.
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const RUNNER_FINALLY = "\t} finally {\n\t\tstate.__test__ = '';";
const REPORTED = "\t} catch (err) {\n\t\tif (errors.length) errors += '\\n';\n\t\terrors += format(`${state.__test__ || 'a before hook'} (hook or setup)`, err, name);\n" + RUNNER_FINALLY;

if (isMainThread) register(import.meta.url);

export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (!/\/uvu\/dist\/index\.mjs$/.test(url)) return loaded;
  const source = String(loaded.source);
  // An uvu that no longer has this spot must be looked at again, not silently left as it was.
  if (!source.includes(RUNNER_FINALLY)) throw new Error(`test/helpers/uvu-hook-errors.mjs: uvu's runner changed (${url}); see that file`);
  return { ...loaded, source: source.replace(RUNNER_FINALLY, REPORTED) };
}
