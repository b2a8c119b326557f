/**
 * Counted skips for a missing prerequisite (docs/testing.md "Tiers and skips"). A skip is a uvu test.skip, so the
 * file's summary and the runner's closing line count it, with a `SKIP <name>: <reason>` line the runner shows even
 * when the file passes. In CI (CI=true) a skip of something CI installs is a failing test instead: CI must not go
 * green for a run that never happened.
 */
import type { Callback, Test } from 'uvu';
import { inCI, lacking } from './prerequisites.mjs';

export { inCI, lacking };

export interface SkipOptions {
  /** true when .ci/run installs the prerequisite (a skip then fails in CI); false for what a run opts into. */
  ciInstalls: boolean;
}

/** Registers `name` as a counted skip (or, in CI for what CI installs, as a failure naming the reason). */
export function skipTest<T>(test: Test<T>, name: string, reason: string, options: SkipOptions): void {
  if (inCI && options.ciInstalls) {
    test(name, () => {
      throw new Error(`CI installs this test's prerequisite, yet it is missing: ${reason}`);
    });
    return;
  }
  console.log(`SKIP ${name}: ${reason}`);
  test.skip(name, () => {});
}

/** `test(name, fn)` when the machine has every need (`root` or a command CI installs), else a counted skip. */
export function testNeeding<T>(test: Test<T>, needs: readonly string[], name: string, fn: Callback<T>): void {
  const why = lacking(needs);
  if (why) skipTest(test, name, why, { ciInstalls: true });
  else test(name, fn);
}
