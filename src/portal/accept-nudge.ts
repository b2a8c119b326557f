/**
 * Nudges a portal's control socket while a call waits for its answer. openNDS (9.x and 10.3.1) and nodogsplash watch
 * their listening socket with an edge-triggered epoll and accept ONE connection per wake-up (src/ndsctl_thread.c:
 * `EPOLLIN | EPOLLET`, one accept() per event). Two connections that arrive while the portal is busy with a call wake
 * it once, so one of them stays in the listen queue until another connection arrives, and from then on every new
 * connection is accepted one late: a caller waits for the NEXT caller. A call sluice gave up on, or any other ndsctl
 * user at the same time (LuCI, a script), is enough; in the openNDS 10.3.1 lab at 64 clients no gate opened in 9 min
 * that way (docs/performance.md). A connection made and closed at once is such an arrival: the portal accepts the
 * oldest waiting connection, and a closed one it drops on sight (its epoll reports a hang-up, src/ndsctl_thread.c), at
 * the cost of an accept and a close. But a nudge that arrives while the portal is still working on the call is itself a
 * second arrival in that busy time: with another one it leaves the queue one longer, for good (the queue only grows;
 * at its backlog of 5 nobody can connect). So the nudges are few and far apart: the first after `afterMs` without a
 * byte of the answer, each next one after twice the wait before it (1, 3, 7, 15, 31 s), at most `max`: a call the
 * portal works on for under 3 s gets at most one, and a queue k long lets a call in after its k-th.
 */
import { createConnection } from 'node:net';

export interface NudgePolicy {
  /** Silence before the first nudge: longer than most calls take, so a portal that is merely working is left alone. */
  afterMs: number;
  /** Nudges per call at most (the portals listen with a backlog of 5); each waits twice as long as the one before. */
  max: number;
  /** Counted by the caller (stats). */
  onNudge?: () => void;
}

/** The default: a portal answering within a second is never nudged. */
export const DEFAULT_NUDGE: Omit<NudgePolicy, 'onNudge'> = { afterMs: 1000, max: 5 };

/** Starts nudging `path` per `policy`; `stop` (the first byte of the answer, or the end of the call) ends it. */
export function nudgeWhileSilent(path: string, policy: NudgePolicy): { stop: () => void } {
  let left = policy.max;
  let wait = policy.afterMs;
  let timer: NodeJS.Timeout | undefined;
  const nudge = (): void => {
    if (left-- <= 0) return;
    policy.onNudge?.();
    const s = createConnection({ path });
    s.on('error', () => {});
    s.on('connect', () => s.destroy());
    wait *= 2;
    timer = setTimeout(nudge, wait);
    timer.unref();
  };
  if (policy.max > 0) {
    timer = setTimeout(nudge, policy.afterMs);
    timer.unref();
  }
  return { stop: () => clearTimeout(timer) };
}
