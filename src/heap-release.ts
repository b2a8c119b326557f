/**
 * Gives back to the router the memory V8 grew into during a busy period, once the daemon is idle again. The pool's
 * last worker thread ending (meter/pool.ts: 30 s without a task, so no live session and a small portal) is the moment.
 *
 * Why the daemon asks: V8 shrinks its young generation and returns old-space pages only after a garbage collection
 * made when it allocates little, and an idle daemon allocates so little that its grown young generation (up to 30 MB
 * after a burst of purchases, 0.3–1 MB idle) takes minutes or hours to fill and be collected. Until then that memory
 * is resident and the rest of the router cannot have it (docs/performance.md, "The leak check"). One full collection
 * at that moment gives it back: one pause of the main thread per busy period (19 ms at an 8 MB heap here, `--trace-gc`;
 * more on a router's CPU), while nobody is being metered on the pool.
 *
 * That collection compacts all of the old generation (V8's `--compact-on-every-full-gc`, set for it alone): a plain
 * one moves only the pages V8 finds sparse enough, and after the hour of 200 sessions it left 18 MB of old space
 * resident for a 12.5 MB live heap, the pages kept by the few objects still on each (docs/performance.md, "The leak
 * check").
 *
 * Node exposes no collection to a process started without `--expose-gc`, and the daemon starts as `sluice.mjs daemon`
 * (no node flags: files/etc/init.d/sluice). The flag set from inside makes `gc` a global of contexts created after it,
 * so a throwaway vm context hands it over, and the flag is cleared again: sluice's own context never gets a `gc`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** One full garbage collection, now (synchronous). False if this node would not hand over its collector. */
export function releaseHeap(): boolean {
  let collect: unknown;
  setFlagsFromString('--expose-gc');
  try {
    collect = runInNewContext('typeof gc === "function" ? gc : undefined');
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  if (typeof collect !== 'function') return false;
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    (collect as () => void)();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
  return true;
}
