import { createHook } from 'node:async_hooks';

/**
 * The file system requests of the thread pool made while `run` runs (one each: an open, a stat, a read, a close…),
 * fs/promises' and fs's callback calls alike, counted by async_hooks: a count, not a time.
 */
export async function poolRequests(run: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const hook = createHook({
    init: (_id, type) => {
      if (type === 'FSREQPROMISE' || type === 'FSREQCALLBACK') n++;
    },
  });
  hook.enable();
  try {
    await run();
  } finally {
    hook.disable();
  }
  return n;
}
