import { logTails } from './log-tails.ts';

/**
 * Polls `cond` every `everyMs` until it holds; past `ms` it throws, naming `what` (a function: what to show then),
 * followed by the last lines of every peer's log still open (log-tails.ts), so a stall says where it stalled.
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
    if (Date.now() > deadline) throw new Error(`timed out: ${typeof what === 'string' ? what : what()}${logTails()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
