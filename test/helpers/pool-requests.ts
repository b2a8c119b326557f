import { createHook } from 'node:async_hooks';

/**
 * The fs/promises requests of the thread pool made while `run` runs (one each: an open, a stat, a read, a close…),
 * counted by async_hooks: a count, not a time.
 */
export async function poolRequests(run: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const hook = createHook({
    init: (_id, type) => {
      if (type === 'FSREQPROMISE') n++;
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
