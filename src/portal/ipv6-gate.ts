/**
 * sluice's side of the IPv6 gate (`netdev sluice_gate`, ipv6-gate-nft.ts): which clients' gates are open, and every
 * change to it, serialised, one nft batch each. The valve opens a client's IPv6 with its quota and counters, just
 * before the portal's auth (withdraw() when the auth does not open the gate), and closes it before asking for the
 * deauth (released() once the portal answered); start() writes the table with the
 * clients of live sessions (a gate opened by an earlier run stays open), rebuild() makes it again when something
 * deleted it (portal/table-watch.ts). A change that fails (the table changed behind sluice's back) rebuilds it from
 * what sluice knows.
 *
 * The same table stops a closing client's forwarded traffic, IPv4 too, from close() until released() (the portal
 * answered the deauth) or open(), or until the stop lapses (`holdSeconds`, started anew by each close tried).
 *
 * At a venue router (`leaseTimeoutMs`), every client whose gate sluice opens is leased: it passes only while its
 * `lease_live` element lives, renewed by renewLeases() (upstream/venue-lease.ts). start() keeps what the kernel had
 * left of each element and renews none of them until confirm(): a lease may have moved on while the daemon was down.
 *
 * Never throws. When the table cannot be made (nft missing, a kernel without netdev egress, before 5.16) IPv6 is not
 * gated: logged at error, since a client that never paid then reaches everything over IPv6 (docs/operations.md says
 * what to do).
 */
import { toSluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';
import { silentLogger, type Log } from '../log.ts';
import {
  closeScript,
  DEFAULT_HOLD_SECONDS,
  GATE_TABLE,
  gardenScript,
  gateTableScript,
  holdScript,
  leaseScript,
  openScript,
  parseLeaseLive,
  releaseScript,
  trustedScript,
  unleaseScript,
} from './ipv6-gate-nft.ts';
import type { NftRun } from './nft-run.ts';

export interface Ipv6GateOptions {
  run: NftRun;
  /** The LAN device(s) the portal gates (`main.shape_device`, every one). */
  devices: readonly string[];
  log?: Log;
  /** How long a closing client stays stopped unless its close is tried again (default DEFAULT_HOLD_SECONDS). */
  holdSeconds?: number;
  /** At a venue router: the lease elements' timeout (upstream/venue-lease-time.ts); none: no client is leased. */
  leaseTimeoutMs?: number;
}

/** A leased client: whether its lease is renewed (confirmed this run), and when its element lapses. */
interface Leased {
  confirmed: boolean;
  until: number;
}

export class Ipv6Gate {
  readonly #run: NftRun;
  readonly #devices: readonly string[];
  readonly #log: Log;
  readonly #open = new Set<string>();
  readonly #holdSeconds: number;
  /** Closing clients (stopped) and when each stop lapses, for a rebuild. */
  readonly #closing = new Map<string, number>();
  /** The MACs the portal trusts, as its last listing read on the main thread said (Valve.snapshot). */
  #trusted: readonly string[] = [];
  readonly #leaseTimeoutMs: number | undefined;
  readonly #leased = new Map<string, Leased>();
  #garden: readonly string[] = [];
  #ports: readonly number[] = [];
  #enabled = false;
  #queue: Promise<unknown> = Promise.resolve();
  #rebuilds = 0;
  #failures = 0;

  constructor(options: Ipv6GateOptions) {
    this.#run = options.run;
    this.#devices = options.devices;
    this.#log = options.log ?? silentLogger;
    this.#holdSeconds = options.holdSeconds ?? DEFAULT_HOLD_SECONDS;
    this.#leaseTimeoutMs = options.leaseTimeoutMs;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  isOpen(mac: string): boolean {
    return this.#open.has(normalizeMac(mac));
  }

  /** The table with these clients' gates open (those of live sessions), replacing whatever was there. */
  start(open: Iterable<string>): Promise<boolean> {
    return this.#serial(async () => {
      this.#open.clear();
      for (const mac of open) this.#open.add(normalizeMac(mac));
      if (this.#leaseTimeoutMs !== undefined) await this.#restoreLeases();
      try {
        await this.#run(['-f', '-'], this.#script());
      } catch (err) {
        this.#enabled = false;
        this.#log.error('IPv6 gate unavailable: IPv6 passes the portal unpaid', {
          reason: toSluiceError(err).message,
          devices: this.#devices.join(','),
        });
        return false;
      }
      this.#enabled = true;
      this.#log.info('IPv6 gate on', {
        table: `netdev ${GATE_TABLE}`,
        devices: this.#devices.join(','),
        open: this.#open.size,
      });
      return true;
    });
  }

  /**
   * The gate open (sluice's auth, or found open): the client's IPv6 passes, and a stop of an earlier close goes.
   * `via` (here and below): the nft run of a transaction the caller makes (nft-batch.ts heldRun), instead of its own.
   */
  open(mac: string, via?: NftRun): Promise<void> {
    return this.#serial(async () => {
      const canonical = normalizeMac(mac);
      const stopped = this.#closing.delete(canonical);
      if (this.#open.has(canonical) && !stopped && (this.#leaseTimeoutMs === undefined || this.#leased.has(canonical)))
        return;
      const opening = !this.#open.has(canonical);
      this.#open.add(canonical);
      const leasing = this.#leaseTimeoutMs !== undefined && !this.#leased.has(canonical);
      if (leasing) this.#leased.set(canonical, { confirmed: true, until: Date.now() + this.#leaseTimeoutMs! });
      if (!this.#enabled) return;
      const lease = leasing ? leaseScript([canonical], this.#leaseTimeoutMs!) : '';
      await this.#apply(
        (stopped ? releaseScript(canonical) : '') + (opening ? openScript(canonical) : '') + lease,
        via,
      );
    });
  }

  /**
   * An opening taken back: the auth it went ahead of (Valve.open) did not open the client's gate. Its IPv6 stops, with
   * no stop of its forwarded IPv4 (the portal never let it through). Nothing when a close came meanwhile.
   */
  withdraw(mac: string, via?: NftRun): Promise<void> {
    return this.#serial(async () => {
      const canonical = normalizeMac(mac);
      if (!this.#open.delete(canonical)) return;
      const leased = this.#leased.delete(canonical);
      if (!this.#enabled) return;
      await this.#apply(closeScript(canonical) + (leased ? unleaseScript(canonical) : ''), via);
    });
  }

  /**
   * Before the deauth: the client's IPv6 stops, its forwarded IPv4 with it (until released() or the stop lapses),
   * established flows included, whether the portal answers or not. Each call starts the stop anew.
   */
  close(mac: string): Promise<void> {
    return this.#serial(async () => {
      const canonical = normalizeMac(mac);
      const wasOpen = this.#open.delete(canonical);
      this.#closing.set(canonical, Date.now() + this.#holdSeconds * 1000);
      const leased = this.#leased.delete(canonical);
      if (!this.#enabled) return;
      const script = (wasOpen ? closeScript(canonical) : '') + holdScript(canonical, this.#holdSeconds);
      await this.#apply(script + (leased ? unleaseScript(canonical) : ''));
    });
  }

  /** The portal answered the deauth (its gate is down): the stop goes, the client reaches its splash page again. */
  released(mac: string, via?: NftRun): Promise<void> {
    return this.#serial(async () => {
      const canonical = normalizeMac(mac);
      if (!this.#closing.delete(canonical)) return;
      if (this.#enabled) await this.#apply(releaseScript(canonical), via);
    });
  }

  /**
   * A round of the venue lease's switch: every confirmed leased client's element lives the lease timeout from now,
   * one nft batch for all. Resolves once the kernel has them (the caller stamps its status after); the MACs renewed.
   */
  renewLeases(): Promise<string[]> {
    return this.#serial(async () => {
      const timeout = this.#leaseTimeoutMs;
      if (timeout === undefined) return [];
      const macs = [...this.#leased].filter(([, l]) => l.confirmed).map(([mac]) => mac);
      if (macs.length === 0 || !this.#enabled) return macs;
      const until = Date.now() + timeout;
      await this.#apply(leaseScript(macs, timeout));
      for (const mac of macs) this.#leased.get(mac)!.until = until;
      return macs;
    });
  }

  /** The leased clients whose lease this run has not confirmed yet (restored at start: the fleet is asked). */
  unconfirmed(): string[] {
    return [...this.#leased].filter(([, l]) => !l.confirmed).map(([mac]) => mac);
  }

  /** The fleet says the lease of `mac` is still this router's: its next round renews it. */
  confirm(mac: string): boolean {
    const l = this.#leased.get(normalizeMac(mac));
    if (l === undefined || l.confirmed) return false;
    l.confirmed = true;
    return true;
  }

  isStopped(mac: string): boolean {
    const until = this.#closing.get(normalizeMac(mac));
    return until !== undefined && until > Date.now();
  }

  /** The MACs the portal trusts (its listing's `trusted`): their IPv6 passes. Written only when the list changed. */
  trusted(macs: readonly string[]): Promise<void> {
    return this.#serial(async () => {
      const next = [...new Set(macs.map((m) => normalizeMac(m)))].sort();
      if (next.length === this.#trusted.length && next.every((m, i) => m === this.#trusted[i])) return;
      this.#trusted = next;
      if (this.#enabled) await this.#apply(trustedScript(next));
    });
  }

  /** The walled garden's IPv6 addresses and ports (walled-garden.ts, at each change). */
  garden(addresses: readonly string[], ports: readonly number[]): Promise<void> {
    return this.#serial(async () => {
      this.#garden = [...addresses];
      this.#ports = [...ports];
      if (this.#enabled) await this.#apply(gardenScript(this.#garden, this.#ports));
    });
  }

  /** The table made again from what sluice knows (it was deleted behind sluice's back). */
  rebuild(reason: string): Promise<void> {
    return this.#serial(() => this.#rebuild(reason));
  }

  stats(): Record<string, number | boolean> {
    return {
      enabled: this.#enabled,
      open: this.#open.size,
      closing: this.#liveClosing().length,
      leased: this.#leased.size,
      lease_unconfirmed: this.unconfirmed().length,
      trusted: this.#trusted.length,
      rebuilds: this.#rebuilds,
      failures: this.#failures,
    };
  }

  /** The stops not lapsed yet (a rebuild writes them with a whole hold: a late stop, never an early release). */
  #liveClosing(): string[] {
    const now = Date.now();
    for (const [mac, until] of this.#closing) if (until <= now) this.#closing.delete(mac);
    return [...this.#closing.keys()];
  }

  #leaseLeft(): Map<string, number> {
    const now = Date.now();
    return new Map([...this.#leased].map(([mac, l]) => [mac, l.until - now]));
  }

  /**
   * At start: every open client is leased, with what the kernel had left of its element (a table of an earlier run),
   * none renewed: a lease may have moved on while no daemon renewed it, which only the fleet can say (confirm()).
   */
  async #restoreLeases(): Promise<void> {
    let left = new Map<string, number>();
    try {
      left = parseLeaseLive(await this.#run(['-j', 'list', 'set', 'netdev', GATE_TABLE, 'lease_live'], ''));
    } catch {
      // No table yet (a first start, a reboot): nothing was left.
    }
    this.#leased.clear();
    const now = Date.now();
    for (const mac of this.#open) this.#leased.set(mac, { confirmed: false, until: now + (left.get(mac) ?? 0) });
  }

  #script(): string {
    return gateTableScript({
      devices: this.#devices,
      open: this.#open,
      closing: this.#liveClosing(),
      holdSeconds: this.#holdSeconds,
      leased: this.#leased.keys(),
      leaseLive: this.#leaseLeft(),
      trusted: this.#trusted,
      garden: this.#garden,
      ports: this.#ports,
    });
  }

  async #apply(script: string, via: NftRun = this.#run): Promise<void> {
    try {
      await via(['-f', '-'], script);
    } catch (err) {
      this.#failures++;
      await this.#rebuild(toSluiceError(err).message);
    }
  }

  async #rebuild(reason: string): Promise<void> {
    if (!this.#enabled) return;
    try {
      await this.#run(['-f', '-'], this.#script());
      this.#rebuilds++;
      this.#log.warn('IPv6 gate: table made again', { reason, open: this.#open.size });
    } catch (err) {
      this.#enabled = false;
      this.#log.error('IPv6 gate off: the table cannot be made again; IPv6 passes the portal unpaid', {
        reason: toSluiceError(err).message,
      });
    }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
