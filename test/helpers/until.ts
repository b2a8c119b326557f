/**
 * Polls `cond` every `everyMs` until it holds; past `ms` it throws, naming `what` (a function: what to show then).
 * A guard against hangs for the tests that wait on a peer or a timer, not a speed check.
 */
export async function until(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  what: string | (() => string),
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
