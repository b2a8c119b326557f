/**
 * sluice's side of the IPv6 gate (`netdev sluice_gate`, ipv6-gate-nft.ts): which clients' gates are open, and every
 * change to it, serialised, one nft batch each. The valve opens a client's IPv6 just before the portal's auth and
 * closes it after the deauth (or a refused auth), as it does the kernel counters; start() writes the table with the
 * clients of live sessions (a gate opened by an earlier run stays open), rebuild() makes it again when something
 * deleted it (portal/table-watch.ts). A change that fails (the table changed behind sluice's back) rebuilds it from
 * what sluice knows.
 *
 * Never throws. When the table cannot be made (nft missing, a kernel without netdev egress, before 5.16) IPv6 is not
 * gated: logged at error, since a client that never paid then reaches everything over IPv6 (docs/operations.md says
 * what to do).
 */
import { toSluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';
import { silentLogger, type Log } from '../log.ts';
import { closeScript, GATE_TABLE, gardenScript, gateTableScript, openScript, trustedScript } from './ipv6-gate-nft.ts';
import type { NftRun } from './nft-run.ts';

export interface Ipv6GateOptions {
  run: NftRun;
  /** The LAN device the portal gates (`main.shape_device`). */
  device: string;
  log?: Log;
}

export class Ipv6Gate {
  readonly #run: NftRun;
  readonly #device: string;
  readonly #log: Log;
  readonly #open = new Set<string>();
  /** The MACs the portal trusts, as its last listing read on the main thread said (Valve.snapshot). */
  #trusted: readonly string[] = [];
  #garden: readonly string[] = [];
  #ports: readonly number[] = [];
  #enabled = false;
  #queue: Promise<unknown> = Promise.resolve();
  #rebuilds = 0;
  #failures = 0;

  constructor(options: Ipv6GateOptions) {
    this.#run = options.run;
    this.#device = options.device;
    this.#log = options.log ?? silentLogger;
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
      try {
        await this.#run(['-f', '-'], this.#script());
      } catch (err) {
        this.#enabled = false;
        this.#log.error('IPv6 gate unavailable: IPv6 passes the portal unpaid', {
          reason: toSluiceError(err).message,
          device: this.#device,
        });
        return false;
      }
      this.#enabled = true;
      this.#log.info('IPv6 gate on', { table: `netdev ${GATE_TABLE}`, device: this.#device, open: this.#open.size });
      return true;
    });
  }

  /** Before the portal's auth: the client's IPv6 passes from its first packet through the gate. */
  open(mac: string): Promise<void> {
    return this.#serial(async () => {
      const canonical = normalizeMac(mac);
      if (this.#open.has(canonical)) return;
      this.#open.add(canonical);
      if (this.#enabled) await this.#apply(openScript(canonical));
    });
  }

  /** After the deauth (or a refused auth): the client's IPv6 stops, its established flows with it. */
  close(mac: string): Promise<void> {
    return this.#serial(async () => {
      const canonical = normalizeMac(mac);
      if (!this.#open.delete(canonical)) return;
      if (this.#enabled) await this.#apply(closeScript(canonical));
    });
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
      trusted: this.#trusted.length,
      rebuilds: this.#rebuilds,
      failures: this.#failures,
    };
  }

  #script(): string {
    return gateTableScript({
      device: this.#device,
      open: this.#open,
      trusted: this.#trusted,
      garden: this.#garden,
      ports: this.#ports,
    });
  }

  async #apply(script: string): Promise<void> {
    try {
      await this.#run(['-f', '-'], script);
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
