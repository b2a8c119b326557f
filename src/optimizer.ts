/**
 * V8's compilers are held off while the daemon is idle and let go for good once it has work: TurboFan (optimizing),
 * Sparkplug (baseline) and irregexp's native code (a regexp runs on V8's regexp interpreter instead). Each one's first
 * compile touches pages of the node binary that stay resident: TurboFan ~3.5 MB (the idle daemon's RssFile 41.3 →
 * 37.7 MB), Sparkplug and native regexps ~0.5 MB of RSS together; an idle daemon's 2 s tick, ubus codec and UCI reader
 * get hot enough for them within a minute, and nothing idle is worth compiling (docs/performance.md, "Idle memory").
 * The work that is — the pool's scan of a large portal or of live sessions' counters — lets them go (meter/pool.ts)
 * before the pool's thread starts, so that thread and the main thread run compiled from then on. A regexp first
 * compiled while held stays on the interpreter (V8 tiers up only what it compiled for tier-up): the daemon's regexps
 * read config, arguments and short request fields, none a hot loop.
 * They are V8 flags set from inside (node:v8 setFlagsFromString): each is read when V8 decides to compile, and
 * `NODE_OPTIONS` refuses them, as it refuses every V8 flag but a few heap sizes. Process-wide: they hold for every
 * thread. Held only by the daemon's entry (main.ts) and the meter bench's measured process, which starts as the daemon
 * does; the tests that build a Meter run as before.
 */
import { setFlagsFromString } from 'node:v8';

/** V8's flags while held, and once released. */
const HELD = ['--no-turbofan', '--no-sparkplug', '--regexp-interpret-all'];
const RELEASED = ['--turbofan', '--sparkplug', '--no-regexp-interpret-all'];
let held = false;

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
}

export function optimizerHeld(): boolean {
  return held;
}
