import { toSluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';
import { silentLogger, type Log } from '../log.ts';
import { isIpv4 } from './kernel-quota-nft.ts';
import { hookDevices } from './nft-devices.ts';
import type { NftRun } from './nft-run.ts';
import type { ClientRates } from './rates.ts';
import {
  SHAPER_MAJOR,
  classId,
  queuedBytes,
  tcClassArgs,
  tcClassDeleteArgs,
  tcClassStatsArgs,
  tcQdiscArgs,
} from './shaper-tc.ts';

/**
 * Per-client speed limits in the kernel (docs/configuration.md "Speed tiers" has the measurements behind the choice).
 *
 * Download is SHAPED: an HTB qdisc on the LAN device (the one the portal gates) with one class per limited client,
 * rate = ceil = its rate. Clients are not classified by tc filters but by sluice's own nftables table
 * (`inet sluice_rate`): `meta priority set ip daddr map @down` writes the client's class id into the packet's
 * priority, which HTB takes as the class when its major is HTB's handle. So tc holds only classes, the table holds who
 * is who (beside the kernel quota's table, changed by the same kind of batch), and an unlimited client's packets match
 * no class and leave HTB's direct queue unshaped. The qdisc's size table (`stab overhead -14`) makes HTB count IP
 * bytes, not Ethernet frames: the unit of the portal's counters and the kernel quota, and 4 % nearer the goodput a
 * customer measures.
 *
 * Upload is POLICED: packets from a limited client's MAC over its rate are dropped at the LAN device's ingress (a
 * named nft `limit` per client, IPv4 and IPv6), at priority UPLOAD_POLICE_PRIORITY: before the kernel quota (-500) and
 * sluice's counters (-450) at the same hook, so a packet the router drops itself uses no quota and is never billed
 * (in prerouting it came after both: the customer paid for what the policer threw away). Shaping upload would need an
 * ifb device (kmod-ifb) redirecting the LAN's ingress; on the lab the redirect broke openNDS's gate, so upload is
 * policed, which TCP tolerates less evenly (see the figures in the docs).
 *
 * Never throws: a failed change rebuilds everything from what sluice knows; a rebuild that fails turns the shaper off
 * (gates and quotas go on; the clients are simply not limited), logged.
 */

export const SHAPER_TABLE = 'sluice_rate';
export { SHAPER_MAJOR, queuedBytes, tcClassArgs, tcClassDeleteArgs, tcClassStatsArgs, tcQdiscArgs };
/** Class minors 1..MAX_CLASSES (hex in tc): one per limited client. */
export const MAX_CLASSES = 0xfffe;
/**
 * How long a removed client's class may keep sending what it had queued before it is deleted anyway (ms). Deleting a
 * class throws its queue away, and every byte in it was counted and billed at the egress hook before the qdisc (a 1
 * Mbit/s client terminated mid-download lost 95 KiB that way in the lab).
 */
export const DRAIN_MAX_MS = 10_000;
/** The upload policer's priority at the LAN device's ingress: before the kernel quota (-500) and counters (-450). */
export const UPLOAD_POLICE_PRIORITY = -550;

export interface ShapedClient extends ClientRates {
  /** Lowercase, colon-separated. */
  mac: string;
  /** IPv4: the download side. */
  ip: string;
}

interface Installed extends ShapedClient {
  minor: number;
}

const limitName = (mac: string): string => `u_${mac.replace(/:/g, '')}`;
/** nft's `limit` counts bytes per second; a burst of 100 ms of the rate, at least ten full-size packets. */
const bytesPerSecond = (bps: number): number => Math.max(1, Math.round(bps / 8));
const burstBytes = (bps: number): number => Math.max(15_000, Math.round(bps / 8 / 10));

/** The whole nft table on `devices`, replacing any earlier one in the same transaction. */
export function shaperTableScript(devices: readonly string[], entries: readonly Installed[]): string {
  const t = SHAPER_TABLE;
  const ingress = `type filter hook ingress ${hookDevices(devices)} priority ${UPLOAD_POLICE_PRIORITY};`;
  return [
    `add table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  map down { type ipv4_addr : classid; }',
    '  map up { type ether_addr : limit; }',
    '  chain download { type filter hook postrouting priority raw; policy accept; meta nfproto ipv4 meta ' +
      'priority set ip daddr map @down; }',
    // The inet family's ingress hook sees IPv4 and IPv6 only (ARP passes), as the quota and the counters count.
    `  chain upload { ${ingress} policy accept; limit name ether saddr map @up drop; }`,
    '}',
    ...entries.flatMap(nftAddLines),
    '',
  ].join('\n');
}

function nftAddLines(e: Installed): string[] {
  const t = SHAPER_TABLE;
  const lines: string[] = [];
  if (e.downBps !== null) lines.push(`add element inet ${t} down { ${e.ip} : ${classId(e.minor)} }`);
  if (e.upBps !== null) {
    lines.push(
      `add limit inet ${t} ${limitName(e.mac)} { rate over ${bytesPerSecond(e.upBps)} bytes/second ` +
        `burst ${burstBytes(e.upBps)} bytes }`,
      `add element inet ${t} up { ${e.mac} : "${limitName(e.mac)}" }`,
    );
  }
  return lines;
}

/** Removes a client's elements and limit; `add` first makes each delete safe when the thing is not there. */
function nftRemoveLines(e: Installed): string[] {
  const t = SHAPER_TABLE;
  return [
    `add element inet ${t} down { ${e.ip} : ${classId(e.minor)} }`,
    `delete element inet ${t} down { ${e.ip} }`,
    `add limit inet ${t} ${limitName(e.mac)} { rate over 1 bytes/second }`,
    `add element inet ${t} up { ${e.mac} : "${limitName(e.mac)}" }`,
    `delete element inet ${t} up { ${e.mac} }`,
    `delete limit inet ${t} ${limitName(e.mac)}`,
  ];
}

export interface ShaperOptions {
  /**
   * The LAN device(s) the portal gates (openNDS's gatewayinterface): download classes go on each one's egress, a
   * client's on every one (its packets leave by the device it is on; a class nothing is classed into costs nothing).
   */
  devices: readonly string[];
  tc: NftRun;
  nft: NftRun;
  log?: Log;
}

export class Shaper {
  readonly #o: ShaperOptions;
  readonly #log: Log;
  readonly #entries = new Map<string, Installed>();
  #queue: Promise<unknown> = Promise.resolve();
  #enabled = false;
  /** start() ran (or set() started it on first use); a shaper that could not start stays off. */
  #started = false;
  #changes = 0;
  #failures = 0;
  /** Minors of removed clients whose class still sends what it had queued: deleted once empty, not reused before. */
  readonly #draining = new Set<number>();

  constructor(options: ShaperOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** The client's rates in force (null: not limited). */
  ratesOf(mac: string): ClientRates | null {
    const e = this.#entries.get(mac);
    return e === undefined ? null : { downBps: e.downBps, upBps: e.upBps };
  }

  /** The qdisc and the table, with these clients limited. False, logged, when tc or nft cannot. */
  start(clients: readonly ShapedClient[] = []): Promise<boolean> {
    return this.#serial(async () => {
      this.#started = true;
      this.#entries.clear();
      for (const c of clients) this.#place(c);
      this.#enabled = await this.#rebuild();
      if (this.#enabled)
        this.#log.info('shaper on', {
          devices: this.#o.devices.join(','),
          table: `inet ${SHAPER_TABLE}`,
          clients: this.#entries.size,
        });
      return this.#enabled;
    });
  }

  /**
   * An earlier run's table, deleted while this run has not started the shaper (a daemon killed or stopped leaves its
   * table and qdisc in the kernel): without it no packet is classed or policed, so the old entries limit no one (the
   * qdisc stays, unclassed traffic passes it unshaped, until a start replaces it). A no-op once started.
   */
  dropLeftover(): Promise<void> {
    return this.#serial(async () => {
      if (this.#started) return;
      try {
        await this.#o.nft(['delete', 'table', 'inet', SHAPER_TABLE], '');
      } catch {
        /* none left, or nft cannot run */
      }
    });
  }

  /**
   * Limits a client from now (replacing its earlier rates); rates both null: not limited any more. The first call
   * starts the shaper when start() was not called (the qdisc goes on the LAN device only once a tier is sold).
   */
  set(client: ShapedClient): Promise<void> {
    return this.#serial(async () => {
      // Lifting a limit on a router that never shaped leaves tc and nft untouched.
      if (!this.#started && client.downBps === null && client.upBps === null) return;
      if (!this.#started) {
        this.#started = true;
        this.#enabled = await this.#rebuild();
        if (this.#enabled)
          this.#log.info('shaper on', { devices: this.#o.devices.join(','), table: `inet ${SHAPER_TABLE}` });
      }
      if (!this.#enabled) return;
      const mac = normalizeMac(client.mac);
      const previous = this.#entries.get(mac);
      if ((client.downBps === null && client.upBps === null) || !isIpv4(client.ip)) {
        if (previous !== undefined) await this.#removeEntry(previous);
        return;
      }
      const next = this.#place({ ...client, mac }, previous?.minor);
      if (next === null) {
        this.#log.warn('shaper: no class left for a client; it is not limited', { mac, classes: MAX_CLASSES });
        return;
      }
      try {
        if (previous !== undefined) await this.#o.nft(['-f', '-'], `${nftRemoveLines(previous).join('\n')}\n`);
        if (next.downBps !== null) await this.#tcEach((d) => tcClassArgs(d, next.minor, next.downBps!));
        else if (previous?.downBps != null) await this.#tcEach((d) => tcClassDeleteArgs(d, previous.minor));
        await this.#o.nft(['-f', '-'], `${nftAddLines(next).join('\n')}\n`);
        this.#changes++;
      } catch (err) {
        await this.#recover(err);
      }
    });
  }

  /** A live change (ubus `change`, RADIUS CoA-Request) of a limited client's rates, at the address it was set with. */
  change(mac: string, rates: ClientRates): Promise<void> {
    const e = this.#entries.get(mac);
    return e === undefined ? Promise.resolve() : this.set({ mac, ip: e.ip, ...rates });
  }

  /** The client is no longer limited (its gate closed). */
  remove(mac: string): Promise<void> {
    return this.#serial(async () => {
      const e = this.#entries.get(mac);
      if (!this.#enabled || e === undefined) return;
      await this.#removeEntry(e);
    });
  }

  stats(): Record<string, number | boolean> {
    return { enabled: this.#enabled, clients: this.#entries.size, changes: this.#changes, failures: this.#failures };
  }

  async #removeEntry(e: Installed): Promise<void> {
    this.#entries.delete(e.mac);
    try {
      // No packet is classed into it from here on (and the portal's gate is closed: none comes).
      await this.#o.nft(['-f', '-'], `${nftRemoveLines(e).join('\n')}\n`);
      if (e.downBps !== null) {
        const queued = await this.#queued(e.minor);
        if (queued > 0) this.#drainThenDelete(e.minor, e.downBps, queued);
        else await this.#tcEach((d) => tcClassDeleteArgs(d, e.minor));
      }
      this.#changes++;
    } catch (err) {
      await this.#recover(err);
    }
  }

  /**
   * Lets a removed client's class send what it still queues (billed already: see DRAIN_MAX_MS) at its rate, then
   * deletes it; outside the change queue, so a close never waits for it. A rebuild meanwhile takes the class with it.
   */
  #drainThenDelete(minor: number, bps: number, queued: number): void {
    this.#draining.add(minor);
    const until = Date.now() + DRAIN_MAX_MS;
    const wait = (bytes: number): Promise<void> =>
      new Promise((resolve) => {
        const ms = Math.min(Math.max(until - Date.now(), 0), Math.ceil((bytes * 8 * 1000) / bps) + 20);
        setTimeout(resolve, ms).unref?.();
      });
    const run = async (): Promise<void> => {
      let left = queued;
      while (left > 0 && Date.now() < until && this.#draining.has(minor)) {
        await wait(left);
        try {
          left = await this.#queued(minor);
        } catch {
          left = 0;
        }
      }
      await this.#serial(async () => {
        if (!this.#draining.delete(minor)) return;
        try {
          await this.#tcEach((d) => tcClassDeleteArgs(d, minor));
        } catch {
          /* gone already (a fresh qdisc), or tc cannot run: a later rebuild replaces the qdisc */
        }
      });
    };
    void run();
  }

  /** Records a client with a class minor (its own, or the lowest free); null when none is free. */
  #place(c: ShapedClient, minor?: number): Installed | null {
    const mac = normalizeMac(c.mac);
    if (!isIpv4(c.ip) || (c.downBps === null && c.upBps === null)) return null;
    let m = minor;
    if (m === undefined) {
      const used = new Set([...this.#entries.values()].map((e) => e.minor).concat([...this.#draining]));
      for (let i = 1; i <= MAX_CLASSES && m === undefined; i++) if (!used.has(i)) m = i;
    }
    if (m === undefined) return null;
    const e: Installed = { mac, ip: c.ip, downBps: c.downBps, upBps: c.upBps, minor: m };
    this.#entries.set(mac, e);
    return e;
  }

  async #recover(err: unknown): Promise<void> {
    this.#failures++;
    this.#log.warn('shaper change failed: rebuilding', { reason: toSluiceError(err).message });
    if (!(await this.#rebuild())) this.#enabled = false;
  }

  /** The qdisc (fresh: every class goes with the old one), each client's class, then the whole table. */
  async #rebuild(): Promise<boolean> {
    try {
      // Every class goes with the old qdisc, the draining ones too.
      this.#draining.clear();
      await this.#freshQdisc();
      for (const e of this.#entries.values())
        if (e.downBps !== null) await this.#tcEach((d) => tcClassArgs(d, e.minor, e.downBps!));
      await this.#o.nft(['-f', '-'], shaperTableScript(this.#o.devices, [...this.#entries.values()]));
      return true;
    } catch (err) {
      this.#failures++;
      this.#entries.clear();
      this.#log.warn('shaper off: tc or nft cannot set the rates; clients are not limited', {
        reason: toSluiceError(err).message,
      });
      try {
        await this.#o.nft(['delete', 'table', 'inet', SHAPER_TABLE], '');
      } catch {
        /* none, or nft cannot run */
      }
      return false;
    }
  }

  /**
   * `replace` creates the root qdisc, or replaces another kind; but on the HTB an earlier run of sluice left (a daemon
   * restart: the kernel keeps it) it is a change, which the kernel refuses ("Change operation not supported by
   * specified qdisc", seen on the lab): then that one, ours by its handle, is deleted (the kernel deletes a root qdisc
   * only when the handle matches, so an operator's own is never touched) and created anew.
   */
  async #freshQdisc(): Promise<void> {
    for (const device of this.#o.devices) {
      try {
        await this.#o.tc(tcQdiscArgs(device), '');
      } catch (err) {
        try {
          await this.#o.tc(['qdisc', 'del', 'dev', device, 'root', 'handle', `${SHAPER_MAJOR}:`], '');
        } catch {
          throw err;
        }
        await this.#o.tc(tcQdiscArgs(device), '');
      }
    }
  }

  /** One tc call on each of the hotspot's devices, in turn. */
  async #tcEach(argsOn: (device: string) => string[]): Promise<void> {
    for (const device of this.#o.devices) await this.#o.tc(argsOn(device), '');
  }

  /** What a class still queues, on all the devices together (a client's traffic leaves by one of them). */
  async #queued(minor: number): Promise<number> {
    let bytes = 0;
    for (const device of this.#o.devices) bytes += queuedBytes(await this.#o.tc(tcClassStatsArgs(device, minor), ''));
    return bytes;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
