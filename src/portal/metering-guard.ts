/**
 * Keeps metering where the customers are (portal/hotspot-devices.ts): the device(s) decided at start, and before each
 * gate sluice opens with the kernel counting, a look at the neighbour table for the device the client is on. A client
 * on a device none of the metered ones carries would pass uncounted and unbraked: the kernel's metering is then turned
 * off (`fallBack`), the meter reads the portal's own counters from its next tick, and the problem stays in `stats`,
 * the log (error) and the upstream health until a restart decides again. No gate waits for it: the portal counts from
 * its auth either way.
 */
import type { Log } from '../log.ts';
import { carries, neighbourDevices, type DeviceFacts, type HotspotDecision } from './hotspot-devices.ts';
import type { NeighbourRead } from './neighbours.ts';

export interface MeteringGuardOptions {
  decision: HotspotDecision;
  facts: DeviceFacts;
  /** The neighbour table's text (null: unreadable), an earlier read of it answering where `accept` says it may. */
  neighbours: NeighbourRead;
  /** Whether the kernel's counters meter now (else the portal's do). */
  kernelCounting: () => boolean;
  /** Turns the kernel's metering off: the meter falls back to the portal's counters. */
  fallBack: (problem: string) => Promise<void>;
  log: Log;
}

export class MeteringGuard {
  readonly decision: HotspotDecision;
  #problem: string | null;
  readonly #o: MeteringGuardOptions;
  /** The check in flight per client: the quota's and the counters' hooks before one auth share it. */
  readonly #checks = new Map<string, Promise<void>>();

  constructor(options: MeteringGuardOptions) {
    this.#o = options;
    this.decision = options.decision;
    this.#problem = options.decision.problem;
  }

  get devices(): readonly string[] {
    return this.decision.devices;
  }

  /** What makes the kernel's count of the hotspot wrong, null when nothing known. */
  get problem(): string | null {
    return this.#problem;
  }

  /**
   * Before an auth the kernel counts for: the client must be on a metered device, else the kernel's metering is turned
   * off first. A client the table does not place (no complete entry) is let be: nothing says it is elsewhere.
   */
  admit(mac: string): Promise<void> {
    const key = mac.toLowerCase();
    const running = this.#checks.get(key);
    if (running !== undefined) return running;
    const check = this.#check(key).finally(() => this.#checks.delete(key));
    this.#checks.set(key, check);
    return check;
  }

  async #check(mac: string): Promise<void> {
    if (!this.#o.kernelCounting()) return;
    const { neighbours } = this.#o;
    const table = await neighbours((t) => neighbourDevices(t, mac, neighbours.parse).length > 0);
    if (table === null) return;
    const on = neighbourDevices(table, mac, neighbours.parse);
    if (on.length === 0 || on.some((d) => carries(this.devices, d, this.#o.facts))) return;
    await this.fail(`${this.devices.join(', ')} carries none of the portal's clients (${mac} is on ${on.join(', ')})`);
  }

  /** The problem recorded and logged, and the kernel's metering off. */
  async fail(problem: string): Promise<void> {
    this.#problem = problem;
    this.#o.log.error("metering: the hotspot's customers are not on the metered device; the portal's counters meter", {
      problem,
      devices: this.devices.join(','),
      source: this.decision.source,
    });
    await this.#o.fallBack(problem);
  }

  stats(): Record<string, string | null> {
    return {
      devices: this.devices.join(','),
      source: this.decision.source,
      counted_by: this.#o.kernelCounting() ? 'kernel' : 'portal',
      problem: this.#problem,
    };
  }
}
