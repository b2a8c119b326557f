import { toSluiceError } from '../errors.ts';
import { tryNormalizeMac } from '../mac.ts';
import { silentLogger, type Log } from '../log.ts';
import { isIpv4, type NftRun } from './kernel-quota.ts';

/**
 * The soft landing of a braked data session: the last bytes of its allotment at a low rate, so that its TCP window
 * has drained when the kernel quota cuts it.
 *
 * Why: the quota drops every packet past the allotment, retransmissions included. A download behind a congested
 * uplink often has a loss in flight, and the segments after the last hole are counted (and billed) but
 * wait in the client's reordering queue for a retransmission the quota then drops: the application never gets them.
 * That is up to a congestion window (~300 KB at 8 Mbit/s behind a 200 ms queue, as issue 23 reported it; the lab did
 * not reproduce it: docs/performance.md, "Soft landing and the first page"). Policed to LANDING_RATE_BYTES_PER_S for
 * the end of its allotment (the meter decides when: meter/brake-watch.ts, SOFT_LANDING_BYTES), the sender's window
 * shrinks to the policer's bucket within a few round trips and the upstream's queue drains, so the cut leaves at most
 * about that bucket undelivered.
 *
 * Its own table (`inet sluice_landing`), not the quota's: a kernel without nft's limit objects, or any failure here,
 * never touches the quota (whose failed changes rebuild its table, or turn it off). Its chain runs just before the
 * quota's (priority raw − 1, postrouting): what the policer drops is neither counted by the quota nor by the portal,
 * so slowing a client costs it nothing. Downloads only, by the client's IPv4 address: the bulk of what a customer
 * receives. One limit object per slowed client, removed when its quota is (the gate closed, a top-up).
 */

export const LANDING_TABLE = 'sluice_landing';
/** The rate of a slowed client's downloads (1 Mbit/s): the meter's 256 KiB landing lasts two seconds at least. */
export const LANDING_RATE_BYTES_PER_S = 128 * 1024;
/**
 * The policer's bucket is a second of its rate plus its burst (nft_limit: `nsecs * (rate + burst) / rate`), so no
 * burst on top: 128 KiB, about what the cut can still leave undelivered, and above the 64 KiB of a GRO-merged packet a
 * router forwards (a packet larger than the bucket would be dropped every time: a stalled client).
 */
export const LANDING_BUCKET_BYTES = LANDING_RATE_BYTES_PER_S;

export function limitName(mac: string): string {
  return `l_${mac.replace(/:/g, '')}`;
}

/** The table, replacing an earlier one (a restart: the sessions it slowed are slowed again by their next reading). */
export function landingTableScript(): string {
  const t = LANDING_TABLE;
  return [
    `add table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  map down { type ipv4_addr : limit; }',
    '  chain download { type filter hook postrouting priority raw - 1; policy accept; limit name ip daddr map @down drop; }',
    '}',
    '',
  ].join('\n');
}

export function slowScript(mac: string, ip: string): string {
  const l = limitName(mac);
  return [
    `add limit inet ${LANDING_TABLE} ${l} { rate over ${LANDING_RATE_BYTES_PER_S / 1024} kbytes/second }`,
    `add element inet ${LANDING_TABLE} down { ${ip} : "${l}" }`,
    '',
  ].join('\n');
}

export function liftScript(mac: string, ip: string): string {
  return [`delete element inet ${LANDING_TABLE} down { ${ip} }`, `delete limit inet ${LANDING_TABLE} ${limitName(mac)}`, ''].join('\n');
}

/**
 * sluice's side of the landing table. Never throws and never waits on the quota: a failed change is logged and the
 * client left as it is (a slowed client a failed lift leaves behind is lifted with the table at the next start, and
 * only ever slowed, never stopped); a table that cannot be made turns the landing off.
 */
export class SoftLanding {
  readonly #run: NftRun;
  readonly #log: Log;
  /** Slowed clients: MAC → the address its limit matches. */
  readonly #slowed = new Map<string, string>();
  /** Clients whose slow-down failed: not tried again (nor logged again) until lifted. */
  readonly #failed = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();
  /** null: the table is not made yet (made at the first slow-down); false: it cannot be. */
  #ready: boolean | null = null;
  #failures = 0;

  constructor(options: { run: NftRun; log?: Log }) {
    this.#run = options.run;
    this.#log = options.log ?? silentLogger;
  }

  isSlowed(mac: string): boolean {
    const canonical = tryNormalizeMac(mac);
    return canonical !== null && this.#slowed.has(canonical);
  }

  /** Slows this client's downloads (once: a later call for the same client does nothing until lift()). */
  slow(mac: string, ip: string): Promise<void> {
    const canonical = tryNormalizeMac(mac);
    if (canonical === null || this.#slowed.has(canonical) || this.#failed.has(canonical) || this.#ready === false || !isIpv4(ip)) return Promise.resolve();
    return this.#serial(async () => {
      if (this.#slowed.has(canonical) || this.#failed.has(canonical) || !(await this.#table())) return;
      try {
        await this.#run(['-f', '-'], slowScript(canonical, ip));
        this.#slowed.set(canonical, ip);
        this.#log.info('soft landing: client slowed for the end of its allotment', { mac: canonical, rate_bytes_per_s: LANDING_RATE_BYTES_PER_S });
      } catch (err) {
        this.#failures++;
        this.#failed.add(canonical);
        this.#log.warn('soft landing: cannot slow the client; the quota cuts it at full speed', { mac: canonical, reason: toSluiceError(err).message });
      }
    });
  }

  /** Lifts a client's slow-down (its quota went: the gate closed, or a top-up took it away from the end). */
  lift(mac: string): Promise<void> {
    return this.#serial(async () => {
      const canonical = tryNormalizeMac(mac);
      if (canonical === null) return;
      this.#failed.delete(canonical);
      const ip = this.#slowed.get(canonical);
      if (ip === undefined) return;
      this.#slowed.delete(canonical);
      try {
        await this.#run(['-f', '-'], liftScript(canonical, ip));
      } catch (err) {
        this.#failures++;
        // Left in the kernel, it only slows whoever has that address next: the table goes at the next start.
        this.#log.warn('soft landing: cannot lift the slow-down', { mac: canonical, reason: toSluiceError(err).message });
      }
    });
  }

  stats(): Record<string, number | boolean> {
    return { enabled: this.#ready !== false, slowed: this.#slowed.size, failures: this.#failures };
  }

  async #table(): Promise<boolean> {
    if (this.#ready !== null) return this.#ready;
    try {
      await this.#run(['-f', '-'], landingTableScript());
      this.#ready = true;
    } catch (err) {
      this.#failures++;
      this.#ready = false;
      this.#log.warn('soft landing off: its table cannot be made; the quota cuts at full speed', { reason: toSluiceError(err).message });
    }
    return this.#ready;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
