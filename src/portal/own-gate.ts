/**
 * sluice's own gate (`main.portal 'sluice'`): who passes is the `paid` set of sluice's table (own-gate-nft.ts), and
 * the gate answers the control protocol openNDS's ndsctl speaks, on a unix socket of its own (own-gate-server.ts), in
 * openNDS's JSON. So the valve, the gate's reconcile, the meter's listings and the nudges drive it as they drive
 * openNDS, with nothing of openNDS's price: an auth is an nft run of the set element, a listing a walk of a Map. The
 * daemon's own openings and closes do not go through the socket: gate/own-valve.ts makes each one nft transaction of
 * the set's element (opening(), closing()) and the kernel quota's, the counters' and the IPv6 gate's lines.
 *
 * A device is let through by its MAC with the IPv4 addresses the router's neighbour table holds for it at its auth (a
 * resolved entry: the address it bought from, and an older one that still lingers), as openNDS matches a client by
 * MAC and address. An auth of a device already open adds the addresses it has taken since (a new lease); a device seen
 * under an address its gate does not hold is listed Preauthenticated under it, so the gate's reconcile and the meter's
 * address watch open it there, as they do when openNDS lists a new lease. A device with no resolved IPv4 entry is
 * unknown (`{}`): the gate retries it until it shows up, as it does for a client openNDS has not listed yet.
 *
 * Nothing is on flash here: the set in the kernel outlives the daemon (a sluice killed with -9 leaves the paid
 * passing and everyone else out), start() reads it back, and the gate's reconcile squares it with the journal.
 */
import { randomBytes } from 'node:crypto';
import { normalizeMac, tryNormalizeMac } from '../mac.ts';
import { silentLogger, type Log } from '../log.ts';
import { completeNeighbours, entriesOfMac, neighbourParser, type NeighbourParse } from './neighbours.ts';
import type { NftRun } from './nft-run.ts';
import {
  OWN_GATE_TABLE,
  ownCloseScript,
  ownGateScript,
  ownOpenScript,
  parsePaidSets,
  type OwnGateRuleset,
  type PaidDevice,
} from './own-gate-nft.ts';

export interface OwnGateOptions {
  /** The gate's ruleset but its paid devices. */
  ruleset: Omit<OwnGateRuleset, 'paid'>;
  /** nft `-f -` runs (the daemon's batcher) and listings. */
  run: NftRun;
  /** `/proc/net/arp`'s text now, null when it cannot be read. */
  neighbours: () => Promise<string | null>;
  log?: Log;
  /** Unix seconds now. */
  now?: () => number;
}

/** A change of the gate's sets: its nft lines, and what to note once nft made them. */
export interface GateChange {
  script: string;
  made: () => void;
}

interface Gate {
  ips: string[];
  token: string;
  since: number;
}

/** Every resolved IPv4 address the neighbour table holds for `mac` on one of `devices`. */
export function resolvedAddresses(
  table: string,
  mac: string,
  devices: readonly string[] | null,
  parse: NeighbourParse = completeNeighbours,
): string[] {
  const on = entriesOfMac(parse(table), mac).filter((e) => devices === null || devices.includes(e.device));
  return [...new Set(on.map((e) => e.ip))];
}

export class OwnGate {
  readonly #options: OwnGateOptions;
  readonly #log: Log;
  readonly #now: () => number;
  readonly #gates = new Map<string, Gate>();
  /** A listing looks at one read of the table once per device. */
  readonly #parse = neighbourParser();
  /** The table is sluice's to keep (TableWatch `kept`): always, while the gate runs. */
  readonly enabled = true;
  /** Rebuilds after the table was deleted behind sluice's back (stats, tests). */
  rebuilds = 0;

  constructor(options: OwnGateOptions) {
    this.#options = options;
    this.#log = options.log ?? silentLogger;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /**
   * Reads the devices an earlier run (or the fw4 include, none) left passing, then installs the gate keeping them: a
   * restart shuts nobody out and lets nobody new in; the gate's reconcile then closes those no session holds.
   */
  async start(): Promise<void> {
    for (const d of await this.#readSets())
      this.#gates.set(d.mac, { ips: [...d.ips], token: token(), since: this.#now() });
    await this.#install();
    this.#log.info('gate installed', { table: `inet ${OWN_GATE_TABLE}`, passing: this.#gates.size });
  }

  /** The table was deleted (`nft flush ruleset`): made again with every device this gate holds open. */
  async rebuild(reason: string): Promise<void> {
    this.rebuilds++;
    try {
      await this.#install();
      this.#log.warn('gate made again', { reason, passing: this.#gates.size });
    } catch (err) {
      this.#log.error('gate could not be made again', { reason: (err as Error).message });
    }
  }

  /** Opens `mac` with its resolved addresses (added to those it has, if open): false when it has none. */
  async auth(mac: string): Promise<boolean> {
    const canonical = normalizeMac(mac);
    const change = this.opening(canonical, await this.#addressesOf(canonical));
    if (change === null) return false;
    await this.#options.run(['-f', '-'], change.script);
    change.made();
    return true;
  }

  /** Closes `mac`: false when it was not open. */
  async deauth(mac: string): Promise<boolean> {
    const change = this.closing(mac);
    if (change === null) return false;
    await this.#options.run(['-f', '-'], change.script);
    change.made();
    return true;
  }

  /**
   * The change that opens `mac` at `ips` (its resolved addresses: those it lacks are added), for the caller to run
   * (alone, or in one transaction with the quota's, the counters' and the IPv6 gate's lines: gate/own-valve.ts), then
   * `made()` once nft made it. Null when there is nothing to open (no address, or open at each already).
   */
  opening(mac: string, ips: readonly string[]): GateChange | null {
    const canonical = normalizeMac(mac);
    const gate = this.#gates.get(canonical);
    const fresh = ips.filter((ip) => !gate?.ips.includes(ip));
    if (fresh.length === 0 && (gate !== undefined || ips.length === 0)) return null;
    return {
      script: ownOpenScript({ mac: canonical, ips: fresh }),
      made: () => {
        const now = this.#gates.get(canonical);
        if (now === undefined) this.#gates.set(canonical, { ips: [...ips], token: token(), since: this.#now() });
        else now.ips.push(...fresh.filter((ip) => !now.ips.includes(ip)));
      },
    };
  }

  /** The change that closes `mac` (as opening()); null when it is not open. */
  closing(mac: string): GateChange | null {
    const canonical = normalizeMac(mac);
    const gate = this.#gates.get(canonical);
    if (gate === undefined) return null;
    return {
      script: ownCloseScript({ mac: canonical, ips: gate.ips }),
      made: () => void this.#gates.delete(canonical),
    };
  }

  isOpen(mac: string): boolean {
    return this.#gates.has(normalizeMac(mac));
  }

  /** `json`: every open gate, in openNDS's form, as of its last auth. */
  async listing(): Promise<string> {
    const table = await this.#options.neighbours();
    const clients = [...this.#gates].map(([mac]) => this.#client(mac, table));
    return listingJson(clients);
  }

  /** `json <mac|ip|token>`: that device (Preauthenticated when not open, or seen under an address its gate lacks). */
  async lookup(target: string): Promise<string> {
    const table = await this.#options.neighbours();
    const mac = tryNormalizeMac(target) ?? this.#macOf(target, table);
    if (mac === null) return '{}';
    const client = this.#client(mac, table);
    return client === null ? '{}' : JSON.stringify(client);
  }

  /** The devices passing now (tests, stats). */
  passing(): PaidDevice[] {
    return [...this.#gates].map(([mac, g]) => ({ mac, ips: [...g.ips] }));
  }

  #client(mac: string, table: string | null): Record<string, string> | null {
    const gate = this.#gates.get(mac);
    const seen = table === null ? [] : resolvedAddresses(table, mac, this.#options.ruleset.devices, this.#parse);
    const unheld = seen.find((ip) => gate !== undefined && !gate.ips.includes(ip));
    if (gate === undefined && seen.length === 0) return null;
    const state = gate !== undefined && unheld === undefined ? 'Authenticated' : 'Preauthenticated';
    const ip = unheld ?? gate?.ips[0] ?? seen[0]!;
    return clientJson({ mac, ip, state, token: gate?.token ?? 'null', since: gate?.since ?? 0 });
  }

  /** A token or an address: the MAC it names. */
  #macOf(target: string, table: string | null): string | null {
    for (const [mac, g] of this.#gates) if (g.token === target || g.ips.includes(target)) return mac;
    if (table === null) return null;
    return this.#parse(table).find((e) => e.ip === target)?.mac ?? null;
  }

  async #addressesOf(mac: string): Promise<string[]> {
    const table = await this.#options.neighbours();
    return table === null ? [] : resolvedAddresses(table, mac, this.#options.ruleset.devices, this.#parse);
  }

  async #install(): Promise<void> {
    await this.#options.run(['-f', '-'], ownGateScript({ ...this.#options.ruleset, paid: this.passing() }));
  }

  async #readSets(): Promise<PaidDevice[]> {
    const list = (set: string): Promise<string> =>
      this.#options.run(['-j', 'list', 'set', 'inet', OWN_GATE_TABLE, set], '').catch(() => '');
    const [pairs, macs] = await Promise.all([list('paid'), list('paid_mac')]);
    return parsePaidSets(pairs, macs);
  }
}

/** openNDS's 8 hex characters (the valve keeps tokens of that form only). */
function token(): string {
  return randomBytes(4).toString('hex');
}

/** One client as openNDS prints it (every value a string): what the valve's and the meter's parsers read. */
function clientJson(c: {
  mac: string;
  ip: string;
  state: string;
  token: string;
  since: number;
}): Record<string, string> {
  return {
    gatewayname: 'sluice',
    version: 'sluice',
    mac: c.mac,
    ip: c.ip,
    session_start: String(c.since),
    session_end: 'null',
    last_active: String(c.since),
    token: c.token,
    state: c.state,
    custom: 'none',
    // The kernel's counters are the meter's usage with this gate (portal 'sluice' needs them): none of its own.
    download_this_session: '0',
    upload_this_session: '0',
  };
}

function listingJson(clients: ReadonlyArray<Record<string, string> | null>): string {
  const listed = clients.filter((c): c is Record<string, string> => c !== null);
  const body = Object.fromEntries(listed.map((c) => [c['mac']!, c]));
  return JSON.stringify({ client_list_length: String(listed.length), clients: body });
}
