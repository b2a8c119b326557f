/**
 * V8's optimizing compiler (TurboFan) is held off while the daemon is idle and let go for good once it has work.
 * The first function TurboFan compiles touches ~3.5 MB of the node binary's pages that stay resident (the idle daemon's
 * RssFile: 41.3 MB, 37.7 held), and an idle daemon's 2 s tick, ubus codec and UCI reader get hot enough for it within a
 * minute; nothing idle is worth compiling (docs/performance.md, "Idle memory"). The work that is — the pool's scan of a
 * large portal or of live sessions' counters — lets it go (meter/pool.ts) before the pool's thread starts, so that
 * thread and the main thread run optimized from then on.
 * It is V8's `--turbofan` flag, set from inside (node:v8 setFlagsFromString): the flag is read each time V8 decides
 * whether to optimize a function, and `NODE_OPTIONS` refuses it, as it refuses every V8 flag but a few heap sizes.
 * Process-wide: it holds for every thread. Held only by the daemon's entry (main.ts) and the meter bench's measured
 * process, which starts as the daemon does; the tests that build a Meter run as before.
 */
import { setFlagsFromString } from 'node:v8';

let held = false;

/** TurboFan off until releaseOptimizer(): for the daemon's start, before its modules load. */
export function holdOptimizer(): void {
  setFlagsFromString('--no-turbofan');
  held = true;
}

/** TurboFan on again (a no-op unless held): the daemon has work that is worth compiling. */
export function releaseOptimizer(): void {
  if (!held) return;
  held = false;
  setFlagsFromString('--turbofan');
}

export function optimizerHeld(): boolean {
  return held;
}
