/**
 * When the next tick runs: one at a time, a request during a tick runs another right after it, a tick asked for by a
 * time (scheduleBy) brings the timer forward, never back, and a tick that throws is reported and polled again. What a
 * tick does is the tick loop's (tick-loop.ts).
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import type { MeterContext } from './context.ts';
import type { TickReport } from './options.ts';

export class TickScheduler {
  private timer: unknown;
  private running: Promise<TickReport> | undefined;
  private again = false;
  /** When the scheduled tick fires (clock ms), for scheduleBy(). */
  private dueAt = Infinity;
  /** A tick asked for (scheduleBy) while one ran: the next one starts no later than this (clock ms). */
  private nextBy = Infinity;

  constructor(
    private readonly ctx: MeterContext,
    private readonly runTick: () => Promise<TickReport>,
  ) {}

  /** Ticks as soon as possible (after the tick in flight, if any). */
  requestTick(): void {
    if (this.ctx.state !== 'running') return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  /** Runs one tick now (the scheduler uses it; tests and the bench call it directly without start()). */
  tick(): Promise<TickReport> {
    if (this.running) return this.running.then(() => this.tick());
    const run = this.runTick().finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  /** Waits for the tick in flight, if any (its failure is the scheduler's to report). */
  async settled(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  stop(): void {
    this.ctx.timers.clearTimeout(this.timer);
  }

  /**
   * Makes sure a tick starts within `delayMs` (sooner if one is due sooner); when a tick is running, the one after it
   * is brought forward instead.
   */
  scheduleBy(delayMs: number): void {
    if (this.ctx.state !== 'running') return;
    const at = this.ctx.clock.now() + delayMs;
    if (this.running) {
      this.nextBy = Math.min(this.nextBy, at);
      return;
    }
    if (at < this.dueAt) this.schedule(delayMs);
  }

  schedule(delayMs: number): void {
    const { ctx } = this;
    ctx.timers.clearTimeout(this.timer);
    this.dueAt = ctx.clock.now() + delayMs;
    this.timer = ctx.timers.setTimeout(() => {
      this.timer = undefined;
      this.dueAt = Infinity;
      void this.tick().then(
        (report) => {
          if (ctx.state !== 'running') return;
          const by = this.nextBy - ctx.clock.now();
          this.nextBy = Infinity;
          if (this.again) {
            this.again = false;
            this.schedule(0);
          } else this.schedule(Math.max(0, Math.min(report.nextInMs, by)));
        },
        (err: unknown) => {
          // A tick that throws must not end metering: report it and poll again.
          ctx.onError(
            new SluiceError('ERR_METER_WORKER', `tick failed: ${toSluiceError(err).message}`, { cause: err }),
          );
          if (ctx.state === 'running') this.schedule(ctx.pollIntervalMs);
        },
      );
    }, delayMs);
  }
}
