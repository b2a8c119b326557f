/**
 * The arithmetic of the venue lease's dead-man's switch (docs/roaming.md, "The holder's switch"), pure. The fleet
 * counts a holder's lease from the `at` of the last status it heard from it (never later than its arrival) and moves
 * it to another router's claim once `--lease-ttl` has passed since. The router renews each leased device's kernel
 * element on its own timer, before it stamps the status that renews the lease, with a timeout short enough that the
 * element lapses, and the kernel stops the device here, before the fleet can let another router open it, whenever
 * the daemon stops renewing (killed, hung, down past its lease), even when the status of its last round never reached
 * the fleet (killed between the batch and the status, the broker's link down at that round): the fleet then counts
 * from the round before, one period earlier.
 */

/** What a lease element's timeout keeps below the fleet's TTL: clock skew between router and fleet (NTP-set). */
export function leaseMarginMs(ttlMs: number): number {
  return Math.max(1000, Math.ceil(ttlMs / 10));
}

/**
 * The kernel element's timeout for a lease of `ttlMs` at the fleet: two thirds of the TTL less its margin, so that the
 * timeout plus a round's period (at most half the timeout: renewEveryMs) stays within the TTL less the margin. Never
 * below 1 ms.
 */
export function leaseTimeoutMs(ttlMs: number): number {
  return Math.max(1, Math.floor(((ttlMs - leaseMarginMs(ttlMs)) * 2) / 3));
}

/**
 * How often the router renews (each round one nft batch for every leased device, then a status): at least twice per
 * element's life, so one late round (a busy router, a slow nft) never lapses its own customers; never less often
 * than the router's own status beat.
 */
export function renewEveryMs(timeoutMs: number, statusIntervalMs: number): number {
  return Math.max(1, Math.min(statusIntervalMs, Math.floor(timeoutMs / 2)));
}

/**
 * The lease TTL a router declares in its status (`lease_ttl`, seconds), only where its switch runs (a venue router
 * with the kernel's gate): the fleet then waits at least that long before it moves one of its leases, since its kernel
 * passes its devices that long (docs/roaming.md). Null elsewhere: no switch, nothing to declare.
 */
export function declaredLeaseTtlS(main: {
  venue: string;
  kernelQuota: boolean;
  venueLeaseTtlMs: number;
}): number | null {
  return main.venue !== '' && main.kernelQuota ? Math.ceil(main.venueLeaseTtlMs / 1000) : null;
}
