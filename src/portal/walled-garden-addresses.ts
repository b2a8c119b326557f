/**
 * What the walled garden's names resolve to, as they change (pure). Each answer is kept for its TTL, bounded to
 * [MIN_TTL_MS, MAX_TTL_MS]: an address a name stops returning leaves the garden once its last answer's TTL ran out,
 * so a client holding that answer in its own cache still reaches it meanwhile; a failed lookup changes nothing until
 * then. A host no longer listed leaves at once.
 */

export const MIN_TTL_MS = 30_000;
export const MAX_TTL_MS = 3_600_000;

export interface Answer {
  address: string;
  /** Seconds, as DNS gives it. */
  ttl: number;
}

export const clampTtlMs = (ttlSeconds: number): number =>
  Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, Number.isFinite(ttlSeconds) ? ttlSeconds * 1000 : 0));

export class GardenAddresses {
  /** host → address → when it expires (ms). */
  private readonly byHost = new Map<string, Map<string, number>>();

  /** Keeps only these hosts (the config's list and the methods' hosts). */
  retain(hosts: readonly string[]): void {
    for (const host of [...this.byHost.keys()]) if (!hosts.includes(host)) this.byHost.delete(host);
  }

  /** A lookup's answers for `host` at `now`: each address is kept until now + its TTL (bounded). */
  answered(host: string, answers: readonly Answer[], now: number): void {
    const held = this.byHost.get(host) ?? new Map<string, number>();
    for (const a of answers) held.set(a.address, Math.max(held.get(a.address) ?? 0, now + clampTtlMs(a.ttl)));
    this.byHost.set(host, held);
  }

  /** Drops what expired by `now`. */
  expire(now: number): void {
    for (const held of this.byHost.values()) for (const [a, until] of held) if (until <= now) held.delete(a);
  }

  /** The addresses `host` holds now, sorted. */
  addressesOf(host: string): string[] {
    return [...(this.byHost.get(host)?.keys() ?? [])].sort();
  }

  /** Every address held, IPv4 and IPv6 apart, sorted (so an unchanged garden writes nothing). */
  addresses(): { v4: string[]; v6: string[] } {
    const all = new Set<string>();
    for (const held of this.byHost.values()) for (const a of held.keys()) all.add(a);
    const sorted = [...all].sort();
    return { v4: sorted.filter((a) => !a.includes(':')), v6: sorted.filter((a) => a.includes(':')) };
  }

  /** When the next lookup is due: the earliest expiry, at least MIN_TTL_MS from now, at most MAX_TTL_MS. */
  nextLookupAt(now: number): number {
    let next = now + MAX_TTL_MS;
    for (const held of this.byHost.values()) for (const until of held.values()) next = Math.min(next, until);
    return Math.max(now + MIN_TTL_MS, next);
  }
}
