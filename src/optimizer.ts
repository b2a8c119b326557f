/**
 * V8's compilers are held off while the daemon is idle and let go for good once it has work: TurboFan (optimizing)
 * and Sparkplug (baseline). Each one's first compile touches pages of the node binary that stay resident: TurboFan
 * ~3.5 MB (the idle daemon's RssFile 41.3 → 37.7 MB), Sparkplug ~0.4 MB of RSS; an idle daemon's 2 s tick, ubus codec
 * and UCI reader get hot enough for them within a minute, and nothing idle is worth compiling (docs/performance.md,
 * "Idle memory"). The work that is — the pool's scan of a large portal, a tick of live sessions' counters on either
 * thread — lets them go (meter/pool.ts), before the pool's thread starts, so both threads run compiled from then on.
 * Not held: irregexp's native code (`--regexp-interpret-all`, ~0.2 MB more): switched back at run time, the daemon's
 * main thread stopped answering once the pool started (test/package/ipk.test.ts, 2026-11-25).
 * They are V8 flags set from inside (node:v8 setFlagsFromString): each is read when V8 decides to compile, and
 * `NODE_OPTIONS` refuses them, as it refuses every V8 flag but a few heap sizes. Process-wide: they hold for every
 * thread. Held only by the daemon's entry (main.ts) and the meter bench's measured process, which starts as the daemon
 * does; the tests that build a Meter run as before.
 */
import { setFlagsFromString } from 'node:v8';

/** V8's flags while held, and once released. */
const HELD = ['--no-turbofan', '--no-sparkplug'];
const RELEASED = ['--turbofan', '--sparkplug'];
let held = false;
/** What waits for the compilers: work run once they are let go (onOptimizerRelease). */
let waiting: Array<() => void> = [];

/** The compilers off until releaseOptimizer(): for the daemon's start, before its modules load. */
export function holdOptimizer(): void {
  for (const flag of HELD) setFlagsFromString(flag);
  held = true;
}

/** The compilers on again (a no-op unless held): the daemon has work that is worth compiling. */
export function releaseOptimizer(): void {
  if (!held) return;
  held = false;
  for (const flag of RELEASED) setFlagsFromString(flag);
  const due = waiting;
  waiting = [];
  // After the work that let them go (a tick), not inside it.
  if (due.length > 0) setImmediate(() => due.forEach((fn) => fn()));
}

/**
 * `fn` runs once the held compilers are let go (on a later turn than the release): work that should be compiled
 * before the traffic that would make it hot arrives (ubus/codec/warm-up.ts). Nothing runs when they are not held:
 * a process that never held them has no such moment.
 */
export function onOptimizerRelease(fn: () => void): void {
  if (held) waiting.push(fn);
}

export function optimizerHeld(): boolean {
  return held;
}
