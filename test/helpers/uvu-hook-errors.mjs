// test/run.mjs preloads this file into a file it runs through tsx (the tiers other than fast): it applies
// test/helpers/uvu-mend.mjs to uvu's runner as it loads, so a throwing before/after hook is reported with its error.
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { UVU_RUNNER, mendUvu } from './uvu-mend.mjs';

if (isMainThread) register(import.meta.url);

export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (!UVU_RUNNER.test(url)) return loaded;
  return { ...loaded, source: mendUvu(String(loaded.source), url) };
}
