/**
 * The holder's side of the venue lease's dead-man's switch (docs/roaming.md, "The holder's switch"). Every round
 * renews, in one nft batch, the kernel element of each device held here under a venue lease (portal/ipv6-gate.ts
 * renewLeases), and only once the kernel has them stamps and publishes the status that renews the leases at the fleet
 * (a round that renewed none publishes nothing):
 * an element never outlives the status after it by more than its timeout, which is shorter than the fleet's TTL
 * (venue-lease-time.ts). A daemon that stops renewing stops its devices in the kernel before the fleet lets another
 * router open them. The rounds run whether or not the broker is reached: a router cut from the fleet serves on, as
 * "a network split" says, and the fleet's expiry, not this switch, decides there.
 *
 * After a restart the devices of sessions still live here keep what the kernel had left of their elements, none
 * renewed: the lease may have moved on while no daemon renewed it. Each is claimed (its own MAC, every
 * VENUE_RETRY_MS until answered); the fleet's `held-here` (it renews the lease on the holder's own claim) or `none`
 * confirms it and a round renews it at once; a lease held elsewhere leaves it stopped until the fleet's revoke ends it.
 */
import type { Log } from '../log.ts';
import { backgroundTimers, type TimerHandle, type Timers } from '../time.ts';
import { VENUE_RETRY_MS } from './venue-state.ts';

/** The switch's elements (portal/ipv6-gate.ts). */
export interface LeaseElements {
  renewLeases(): Promise<string[]>;
  unconfirmed(): string[];
  confirm(mac: string): boolean;
}

export interface VenueLeaseDeps {
  gate: LeaseElements;
  /** The router's status now (SinkHost.statusNow): what renews the leases at the fleet. */
  statusNow: () => void;
  /** Publishes a claim for a MAC whose session is live here (false: no connection up). */
  claim: (mac: string) => boolean;
  /** The rounds' period (renewEveryMs). */
  everyMs: number;
  log: Log;
  timers?: Timers;
}

export class VenueLeaseSwitch {
  private readonly timers: Timers;
  private roundTimer: TimerHandle | null = null;
  private claimTimer: TimerHandle | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(private readonly deps: VenueLeaseDeps) {
    this.timers = deps.timers ?? backgroundTimers;
  }

  start(): void {
    this.closed = false;
    void this.round();
    this.claimUnconfirmed();
  }

  close(): void {
    this.closed = true;
    if (this.roundTimer !== null) this.timers.clearTimeout(this.roundTimer);
    if (this.claimTimer !== null) this.timers.clearTimeout(this.claimTimer);
    this.roundTimer = this.claimTimer = null;
  }

  /** The fleet's answer to a claim: `held-here` or `none` confirms a lease this run had not renewed yet. */
  answered(mac: string, state: string): void {
    if (state !== 'held-here' && state !== 'none') return;
    if (!this.deps.gate.confirm(mac)) return;
    this.deps.log.info('venue: lease confirmed after a restart, renewed', { mac, state });
    void this.round();
  }

  /** One round: the elements renewed, then the status. A round asked while one runs follows it. */
  round(): Promise<void> {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    if (this.roundTimer !== null) this.timers.clearTimeout(this.roundTimer);
    this.roundTimer = null;
    this.running = (async () => {
      do {
        this.again = false;
        // The status after the kernel has the elements: it is what the fleet counts the lease's TTL from.
        const renewed = await this.deps.gate.renewLeases().catch((err: unknown) => {
          this.deps.log.warn('venue: lease elements not renewed', { reason: (err as Error).message });
          return null;
        });
        // No device passes here under a lease: the status would renew no element's lease (the sink's own beat still
        // says the router is alive), so a quiet venue router sends no more statuses than any other.
        if (renewed === null || renewed.length > 0) this.deps.statusNow();
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = null;
      if (!this.closed) this.roundTimer = this.timers.setTimeout(() => void this.round(), this.deps.everyMs);
    });
    return this.running;
  }

  private claimUnconfirmed(): void {
    if (this.closed) return;
    const waiting = this.deps.gate.unconfirmed();
    for (const mac of waiting) this.deps.claim(mac);
    if (waiting.length > 0) this.claimTimer = this.timers.setTimeout(() => this.claimUnconfirmed(), VENUE_RETRY_MS);
  }
}
