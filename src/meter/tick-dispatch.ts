/**
 * What a tick waits on: the worker's task, and with a portal queue the queue itself, held only until the worker
 * reports the fetch finished (the shared fetch signal), so the portal's other commands do not wait for the scan.
 */
import type { Clock } from '../time.ts';
import type { CutPlanner } from './cut-planner.ts';
import type { MeterOptions } from './options.ts';

export class TickDispatch {
  /** The worker stores 1 here and notifies once it has read the portal (the task carries it as fetchSignal). */
  readonly fetchSignal = new SharedArrayBuffer(4);

  constructor(
    private readonly clock: Clock,
    private readonly planner: CutPlanner,
    private readonly portal: MeterOptions['portal'],
    private readonly fetchTimeoutMs: number,
  ) {}

  /**
   * Runs the task; with a portal queue and `holdsPortal` (the task reads the portal), holds the queue only until the
   * worker reports the fetch finished. A kernel tick that lists nothing never waits for the portal's queue.
   */
  async dispatch<R>(
    run: () => Promise<R>,
    holdsPortal: boolean,
    onDispatch: (at: number) => void,
    timeoutMs: number,
  ): Promise<R> {
    const { portal } = this;
    if (portal === undefined || !holdsPortal) {
      onDispatch(this.clock.now());
      return run();
    }
    await this.planner.waitForCuts(this.fetchTimeoutMs);
    let result: Promise<R> | undefined;
    await portal.runExclusive(async () => {
      const cell = new Int32Array(this.fetchSignal);
      Atomics.store(cell, 0, 0);
      onDispatch(this.clock.now());
      result = run();
      const settled = result.then(
        () => undefined,
        () => undefined,
      );
      // No timeout given to waitAsync: V8 would post a task per call for it that stays allocated until the timeout
      // passes even once the wait is over (10 s a tick, in whatever malloc chunk came to hand: such chunks held up
      // the ended pool thread's arena, docs/performance.md "The leak check"). A timer bounds the wait instead, and the
      // waiter is released below when the task ended without signalling.
      const waiter = (
        Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: unknown } }
      ).waitAsync(cell, 0, 0);
      let bound: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        bound = setTimeout(resolve, timeoutMs * 2);
      });
      await Promise.race([settled, waiter.async ? waiter.value : undefined, late]);
      clearTimeout(bound);
      Atomics.notify(cell, 0);
    });
    return result!;
  }
}
