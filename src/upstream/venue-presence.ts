/**
 * Whether a device is still at this router, for roaming's releases (docs/roaming.md): it is while the meter billed it
 * traffic within `main.venue_present_window`. A release waits for a device that has just left (its last traffic here
 * a moment before it appeared at the claimer) and gives it up once the window has passed, with a fresh reading of the
 * counters after each wait, so what it used here is billed here; one whose traffic goes on is refused.
 */
import { SluiceError } from '../errors.ts';
import type { SessionManager, UsageReport } from '../sessions/index.ts';
import type { Clock, TimerHandle, Timers } from '../time.ts';

/** A release waits this long at most for the meter's fresh reading (then decides on the last tick's). */
const READING_WAIT_MS = 5000;
/**
 * A release waits for the device to have left here this long at most past `present_window`; the fleet's resend of the
 * release meanwhile joins the one waiting.
 */
export const RELEASE_HOLD_MS = 2000;

export interface PresenceDeps {
  sessions: Pick<SessionManager, 'on'>;
  windowMs: () => number;
  /** A fresh reading of the meter (one tick), billed: what the device used since the last tick counts as presence. */
  reading?: () => Promise<unknown>;
  clock: Clock;
  timers: Timers;
}

export class VenuePresence {
  /** MAC → when the meter last billed it traffic here. */
  private readonly seen = new Map<string, number>();
  private unfollow: (() => void) | null = null;

  constructor(private readonly deps: PresenceDeps) {}

  /** Follows the meter's billing: a MAC billed bytes is present. */
  follow(): void {
    this.unfollow ??= this.deps.sessions.on('usage', (batch: readonly UsageReport[]) => {
      const now = this.deps.clock.now();
      for (const r of batch) if (r.deltaBytes > 0) this.seen.set(r.mac, now);
    });
  }

  close(): void {
    this.unfollow?.();
    this.unfollow = null;
  }

  /**
   * Resolves once `mac` has had no traffic billed here for the window, a fresh reading first and after each wait;
   * throws ERR_VENUE_DEVICE_PRESENT when it still has past the window plus RELEASE_HOLD_MS (it flips between two access
   * points, or a copy of its MAC claims it elsewhere).
   */
  async untilAbsent(mac: string): Promise<void> {
    await this.freshReading();
    const window = this.deps.windowMs();
    const latest = this.deps.clock.now() + window + RELEASE_HOLD_MS;
    for (;;) {
      const seen = this.seen.get(mac);
      const now = this.deps.clock.now();
      if (seen === undefined || now - seen >= window) return;
      if (seen + window > latest)
        throw new SluiceError('ERR_VENUE_DEVICE_PRESENT', `${mac} had traffic here ${now - seen} ms ago`);
      await new Promise<void>((resolve) => this.deps.timers.setTimeout(resolve, seen + window - now));
      await this.freshReading();
    }
  }

  /** The meter's next tick, billed (READING_WAIT_MS at most; a failed or late one leaves the last tick's figures). */
  async freshReading(): Promise<void> {
    const reading = this.deps.reading;
    if (reading === undefined) return;
    let timer: TimerHandle | null = null;
    const late = new Promise<void>((resolve) => (timer = this.deps.timers.setTimeout(resolve, READING_WAIT_MS)));
    await Promise.race([reading().catch(() => undefined), late]);
    if (timer !== null) this.deps.timers.clearTimeout(timer);
  }
}
