// tier: fast
// A fast file's stack traces name the sources, while no module's source map is read as it loads (the runner's
// test/helpers/lazy-source-maps.mjs reads a map when a trace first reaches its module).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { normalizeMac } from '../src/mac.ts';

/** The file V8 runs this module from: the bundle's chunk when bundled, else the source. */
function runningFrom(): string {
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = (_, sites) => sites;
  const sites = new Error().stack as unknown as NodeJS.CallSite[];
  Error.prepareStackTrace = prepare;
  return sites[0]!.getFileName() ?? '';
}

test('a stack trace names the source file, function and line', () => {
  let stack = '';
  try {
    normalizeMac('not a mac');
  } catch (err) {
    stack = (err as Error).stack ?? '';
  }
  assert.match(stack, /^SluiceError: not a MAC address/);
  assert.match(stack, /\n {4}at normalizeMac \(\/\S+\/src\/mac\.ts:26:\d+\)/);
});

test('a bundled file reads no source map as its modules load', () => {
  if (!runningFrom().includes('/.cache/sluice-test/')) return; // from the sources (tsx): its own maps
  assert.is(process.sourceMapsEnabled, false);
});

test.run();
