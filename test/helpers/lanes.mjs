// test/run.mjs's pool: runs its files a fixed number at a time (its lanes), the files that wait beside them from the
// start, and one more beside them whenever the machine has had a core idle since the last one started. A file of the
// fast tier that waits on the retry timers it asserts (gate/gatekeeper: ~9 s of wall for 0.4 s of CPU) held a lane and
// no CPU: with three lanes on two cores, two such files at once left a core idle until the sampler saw it. What may run
// beside the lanes is the caller's choice (the fast tier's threads: a thread more costs no process start).
import { readFileSync } from 'node:fs';

/** How often the machine's idle time is read while files wait to start. */
const SAMPLE_MS = 250;
/** Idle cores, averaged since the last file started, that start one more file beside the lanes. */
const IDLE_CORES = 0.75;

/**
 * The cores idle between two readings of /proc/stat's first line (`cpu  user nice system idle iowait irq softirq steal
 * …`, in ticks summed over the cores): idle and iowait as a share of the ticks that passed, times the cores. Time the
 * hypervisor stole is not idle. Null when no tick passed.
 */
export function idleCores(before, after, cores) {
  const ticks = (text) => {
    const f = text.split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
    return { idle: f[3] + f[4], all: f.reduce((a, t) => a + t, 0) };
  };
  const [a, b] = [ticks(before), ticks(after)];
  const all = b.all - a.all;
  return all > 0 ? ((b.idle - a.idle) / all) * cores : null;
}

/** The machine's idle cores since the last call (none before the first: a window must pass); null without /proc. */
export function machineIdle(cores) {
  let last = null;
  return () => {
    let now;
    try {
      now = readFileSync('/proc/stat', 'utf8');
    } catch {
      return null;
    }
    const idle = last === null ? null : idleCores(last, now, cores);
    last = now;
    return idle;
  };
}

/**
 * Runs each item once through `run`, `lanes` at a time; and while an item `beside(item)` is next, one more whenever
 * `idle()` (cores idle since its previous call) is at least IDLE_CORES, up to `most` at once. An item that waits
 * (`waits(item)`: on timers or peers, with little CPU) and may run beside takes no lane: it starts beside them as soon
 * as fewer than `most - lanes` run beside, in its order among the waiting ones; once no other item is left, the lanes
 * take such items too. Resolves when all ran, with how many items started beside the lanes.
 * @template T
 * @param {T[]} items in the order they start
 * @param {{ lanes: number, run: (item: T) => Promise<void>, most?: number, beside?: (item: T) => boolean,
 *   waits?: (item: T) => boolean, idle?: () => number | null, sampleMs?: number }} o
 */
export function runLanes(
  items,
  { lanes, run, most = lanes, beside = () => false, waits = () => false, idle = () => null, sampleMs },
) {
  const waiting = [];
  const others = [];
  for (const item of items) (waits(item) && beside(item) ? waiting : others).push(item);
  let inLanes = 0;
  let besideNow = 0;
  let besides = 0;
  let left = items.length;
  return new Promise((resolve, reject) => {
    let timer = null;
    const start = (item, inLane) => {
      if (inLane) inLanes++;
      else {
        besideNow++;
        besides++;
      }
      run(item).then(
        () => {
          if (inLane) inLanes--;
          else besideNow--;
          left--;
          if (left === 0) {
            clearInterval(timer);
            resolve(besides);
          } else fill();
        },
        (err) => {
          clearInterval(timer);
          reject(err);
        },
      );
    };
    const fill = () => {
      while (inLanes < lanes && others.length + waiting.length > 0) start(others.shift() ?? waiting.shift(), true);
      while (waiting.length > 0 && besideNow < most - lanes) start(waiting.shift(), false);
    };
    if (left === 0) return resolve(0);
    fill();
    if (most <= lanes) return;
    idle(); // the window starts now
    timer = setInterval(() => {
      const cores = idle();
      if (others.length === 0) return clearInterval(timer);
      if (cores === null || cores < IDLE_CORES || inLanes + besideNow >= most || !beside(others[0])) return;
      start(others.shift(), false);
      idle(); // the next window starts with this file, which takes a moment to use its core
    }, sampleMs ?? SAMPLE_MS);
    timer.unref?.();
  });
}
