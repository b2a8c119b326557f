/**
 * Nudges a portal's control socket while a call sits in its accept queue. openNDS (9.x and 10.3.1) and nodogsplash
 * watch their listening socket with an edge-triggered epoll and accept ONE connection per wake-up
 * (src/ndsctl_thread.c: `EPOLLIN | EPOLLET`, one accept() per event). Connections that arrive while the portal is
 * busy with a call wake it once, so all but one of them stay in the listen queue, and from then on every new
 * connection is accepted that many late: a caller waits for the NEXT callers. Nothing shrinks that queue (each wake-up
 * is one arrival and one accept), and at the backlog (5) nobody can connect any more; two callers at once (sluice and
 * LuCI, a script, the lab's harness) are enough to start it.
 *
 * A connection made and closed at once is an arrival: the portal accepts the oldest waiting connection, and a closed
 * one it drops on sight (its epoll reports a hang-up). Such a nudge helps only while the portal sleeps with a queue;
 * one that arrives while it is serving a call is a second arrival in that busy time and leaves the queue one longer,
 * for good. So the nudger looks before it nudges (accept-queue.ts, /proc/net/unix): it nudges only when connections
 * wait and none is being served, the same ones on `stableLooks` looks in a row (a portal that has just closed a call
 * accepts the next within microseconds; a loaded one within a scheduling slice). Each nudge then lets exactly one
 * waiting connection in and adds none to the portal's work. Where the queue cannot be seen (the portal in another
 * network namespace), the nudges go blind: the first after `afterMs` of silence, each next after twice the wait
 * before it (1, 3, 7, 15, 31 s), at most `max`.
 */
import { createConnection } from 'node:net';
import { readAcceptQueue, type AcceptQueue } from './accept-queue.ts';

export interface NudgePolicy {
  /** Silence before the first look (or blind nudge): longer than most calls take, so a working portal is left alone. */
  afterMs: number;
  /** Nudges per call at most (the portals listen with a backlog of 5). */
  max: number;
  /** Between two looks at the queue while the answer is late. */
  lookEveryMs?: number;
  /** Looks in a row that must find the same connections waiting and none served before a nudge. */
  stableLooks?: number;
  /** Counted by the caller (stats). */
  onNudge?: () => void;
  /** The queue as the kernel lists it; undefined when it cannot be seen (then the nudges go blind). */
  readQueue?: (path: string) => Promise<AcceptQueue | undefined>;
}

/** The default: a portal answering within half a second is never looked at. */
export const DEFAULT_NUDGE: Omit<NudgePolicy, 'onNudge'> = { afterMs: 500, max: 5, lookEveryMs: 150, stableLooks: 3 };

/** Blind nudges start after a second of silence (the schedule the looks replace where they can). */
const BLIND_FIRST_MS = 1000;

function nudgeOnce(path: string): void {
  const s = createConnection({ path });
  s.on('error', () => {});
  s.on('connect', () => s.destroy());
}

/** Starts watching `path` per `policy`; `stop` (the first byte of the answer, or the end of the call) ends it. */
export function nudgeWhileSilent(path: string, policy: NudgePolicy): { stop: () => void } {
  let left = policy.max;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const readQueue = policy.readQueue ?? readAcceptQueue;
  const lookEvery = policy.lookEveryMs ?? 150;
  const stableLooks = Math.max(1, policy.stableLooks ?? 3);
  let stuckKey: string | undefined;
  let stuckLooks = 0;
  let blindWait = Math.max(policy.afterMs, BLIND_FIRST_MS);
  let blindAt = Date.now() + blindWait;
  const later = (ms: number, fn: () => void): void => {
    if (stopped || left <= 0) return;
    timer = setTimeout(fn, ms);
    timer.unref();
  };
  const nudge = (): void => {
    left--;
    policy.onNudge?.();
    nudgeOnce(path);
  };
  const look = (): void => {
    void readQueue(path).then(
      (queue) => {
        if (stopped) return;
        if (queue === undefined) {
          const now = Date.now();
          if (now >= blindAt) {
            nudge();
            blindWait *= 2;
            blindAt = now + blindWait;
          }
          later(blindAt - now, look);
          return;
        }
        const key = queue.serving === 0 && queue.waiting.length > 0 ? queue.waiting.join(',') : undefined;
        stuckLooks = key !== undefined && key === stuckKey ? stuckLooks + 1 : key === undefined ? 0 : 1;
        stuckKey = key;
        if (stuckLooks >= stableLooks) {
          nudge();
          stuckKey = undefined;
          stuckLooks = 0;
        }
        later(lookEvery, look);
      },
      () => later(lookEvery, look),
    );
  };
  if (policy.max > 0) later(policy.afterMs, look);
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
