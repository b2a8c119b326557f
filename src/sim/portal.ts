import { SluiceError } from '../errors.ts';
import { normalizeOwnMac } from '../mac.ts';
import { systemClock, type Clock } from '../time.ts';
import type { PortalFlavour } from '../portal/index.ts';
import {
  renderJsonFor,
  renderNodogsplashOne,
  renderOpenNdsOne,
  type GatewayInfo,
  type SimClient,
} from './portal-render.ts';
import { executeNdsctl, type AuthArgs, type ExecResult } from './ndsctl-exec.ts';

export type { GatewayInfo, SimClient } from './portal-render.ts';

/**
 * A captive portal's client table, pure (no I/O; clock injected), behaving like openNDS 9.10 or nodogsplash 5.0.2
 * as read from their sources (ndsctl.c, ndsctl_thread.c, auth.c, client_list.c) and docs/captive-portal.md:
 * - clients arrive Preauthenticated; only a Preauthenticated client can be authed (else "No" → exit 1);
 * - counters are per auth: zero at auth; counted only while Authenticated;
 * - openNDS deauth removes the client (it returns later as a new entry); nodogsplash keeps it Preauthenticated
 *   with zeroed counters and a new token; deauth of a client that is not Authenticated answers "No";
 * - auth arguments of 0 mean the global default; openNDS 9 stops = everyone gone.
 * `execute(argv)` answers like the ndsctl binary (stdout, stderr, exit code) for json/auth/deauth/status.
 */

export interface PortalConfig extends GatewayInfo {
  flavour: PortalFlavour;
  /** `allow_preemptive_authentication` (off in openNDS 9.x). */
  preemptive: boolean;
  /** Global defaults that an auth argument of 0 stands for. */
  sessionTimeoutMinutes: number;
  downloadRate: number;
  uploadRate: number;
  downloadQuotaKiB: number;
  uploadQuotaKiB: number;
  trustedMacs: string[];
}

export interface PortalModelJson {
  config: PortalConfig;
  running: boolean;
  nextId: number;
  seed: number;
  authenticatedSinceStart: number;
  clients: SimClient[];
}

const DEFAULT_CONFIG: PortalConfig = {
  flavour: 'opennds',
  gatewayName: 'sluice',
  gatewayAddress: '10.77.0.1:2050',
  gatewayFqdn: 'disable',
  version: '9.10.0',
  clientIf: 'br-lan',
  preemptive: false,
  sessionTimeoutMinutes: 1440,
  downloadRate: 0,
  uploadRate: 0,
  downloadQuotaKiB: 0,
  uploadQuotaKiB: 0,
  trustedMacs: [],
};

export class PortalModel {
  readonly config: PortalConfig;
  running = true;
  #clients = new Map<string, SimClient>();
  #nextId = 1;
  #seed: number;
  #authenticatedSinceStart = 0;
  #clock: Clock;

  constructor(config: Partial<PortalConfig> = {}, opts: { clock?: Clock; seed?: number } = {}) {
    this.config = { ...DEFAULT_CONFIG, ...config, trustedMacs: [...(config.trustedMacs ?? [])] };
    if (config.version === undefined && this.config.flavour === 'nodogsplash') this.config.version = '5.0.2';
    this.#clock = opts.clock ?? systemClock;
    this.#seed = (opts.seed ?? 0x5eed1) >>> 0 || 1;
  }

  get flavour(): PortalFlavour {
    return this.config.flavour;
  }

  get size(): number {
    return this.#clients.size;
  }

  setClock(clock: Clock): void {
    this.#clock = clock;
  }

  /** The portal's own time: whole unix seconds, as openNDS and nodogsplash print it. */
  #now(): number {
    return Math.floor(this.#clock.now() / 1000);
  }

  /** A copy of one client, found by MAC, IP or token like ndsctl does. */
  get(target: string): SimClient | undefined {
    const c = this.#find(target);
    return c === undefined ? undefined : { ...c };
  }

  clients(): SimClient[] {
    return [...this.#clients.values()].map((c) => ({ ...c }));
  }

  /** A client reaching the portal (DHCP + first packet): Preauthenticated, new token, zero counters. */
  addClient(mac: string, ip: string): SimClient {
    const key = normalizeOwnMac(mac);
    const existing = this.#clients.get(key);
    if (existing !== undefined) return { ...existing };
    const c = this.#newClient(key, ip, 'cpd_can');
    this.#clients.set(key, c);
    return { ...c };
  }

  /** The client leaves (idle timeout, departure): gone from the list. */
  remove(mac: string): boolean {
    return this.#clients.delete(normalizeOwnMac(mac));
  }

  /** `ndsctl auth`. Returns the portal's Yes/No. */
  auth(target: string, args: AuthArgs = {}): boolean {
    if (!this.running) return false;
    let c = this.#find(target);
    if (c === undefined && this.config.preemptive && this.config.flavour === 'opennds') {
      let key: string;
      try {
        key = normalizeOwnMac(target);
      } catch {
        return false;
      }
      // The real one looks the IP up in the neighbour table; the model has none, so the address stays unknown.
      c = this.#newClient(key, '0.0.0.0', 'preemptive');
      this.#clients.set(key, c);
    }
    if (c === undefined || c.state !== 'Preauthenticated') return false;
    const now = this.#now();
    c.state = 'Authenticated';
    c.downloadBytes = 0;
    c.uploadBytes = 0;
    c.lastActive = now;
    if (this.config.flavour === 'nodogsplash') {
      // nodogsplash's ndsctl auth takes no limits and leaves `added` (session_start) at 0.
      this.#authenticatedSinceStart++;
      return true;
    }
    const minutes =
      (args.sessionMinutes ?? 0) > 0 ? (args.sessionMinutes as number) : this.config.sessionTimeoutMinutes;
    c.sessionStart = now;
    c.sessionEnd = minutes > 0 ? now + minutes * 60 : 0;
    c.uploadRate = orDefault(args.uploadRate, this.config.uploadRate);
    c.downloadRate = orDefault(args.downloadRate, this.config.downloadRate);
    c.uploadQuota = orDefault(args.uploadQuotaKiB, this.config.uploadQuotaKiB);
    c.downloadQuota = orDefault(args.downloadQuotaKiB, this.config.downloadQuotaKiB);
    // Base64 of "na", what openNDS stores when no custom string is given.
    c.custom = args.custom !== undefined && args.custom !== '' ? args.custom : 'bmE=';
    this.#authenticatedSinceStart++;
    return true;
  }

  /** nodogsplash's splash-page path: like auth, but it sets `added`, so the first second renders inf/nan. */
  authViaSplash(target: string): boolean {
    const ok = this.auth(target);
    const c = ok ? this.#find(target) : undefined;
    if (c !== undefined && this.config.flavour === 'nodogsplash') c.sessionStart = this.#now();
    return ok;
  }

  /** `ndsctl deauth`. Only an Authenticated client can be deauthed; the rest answer No ("not found"). */
  deauth(target: string): boolean {
    if (!this.running) return false;
    const c = this.#find(target);
    if (c === undefined || (c.state !== 'Authenticated' && c.state !== 'AuthBlocked')) return false;
    this.#deauthClient(c);
    return true;
  }

  /** Traffic through the gate, in bytes. Counted only for authenticated clients; returns whether it was. */
  addTraffic(mac: string, downloadBytes: number, uploadBytes: number): boolean {
    if (
      !Number.isSafeInteger(downloadBytes) ||
      !Number.isSafeInteger(uploadBytes) ||
      downloadBytes < 0 ||
      uploadBytes < 0
    ) {
      throw new SluiceError('ERR_INVALID_ARGUMENT', 'traffic must be non-negative integer bytes');
    }
    const c = this.#clients.get(normalizeOwnMac(mac));
    if (c === undefined || !this.running) return false;
    c.lastActive = this.#now();
    if (c.state !== 'Authenticated') return false;
    c.downloadBytes += downloadBytes;
    c.uploadBytes += uploadBytes;
    return true;
  }

  /**
   * openNDS's periodic check (every `checkinterval`): session timeouts and quotas (quota KiB <= bytes/1024)
   * deauth the client. Returns the MACs it deauthed.
   */
  enforce(): string[] {
    if (this.config.flavour !== 'opennds' || !this.running) return [];
    const now = this.#now();
    const ended: string[] = [];
    for (const c of [...this.#clients.values()]) {
      if (c.state !== 'Authenticated') continue;
      const timedOut = c.sessionEnd !== 0 && c.sessionEnd <= now;
      const downOver = c.downloadQuota > 0 && c.downloadQuota <= Math.floor(c.downloadBytes / 1024);
      const upOver = c.uploadQuota > 0 && c.uploadQuota <= Math.floor(c.uploadBytes / 1024);
      if (timedOut || downOver || upOver) {
        this.#deauthClient(c);
        ended.push(c.mac);
      }
    }
    return ended;
  }

  /** The portal process stops: its client table is gone (openNDS 9 deauths everyone); ndsctl exits 3. */
  stop(): void {
    this.running = false;
    this.#clients.clear();
    this.#authenticatedSinceStart = 0;
  }

  start(): void {
    this.running = true;
  }

  restart(): void {
    this.stop();
    this.start();
  }

  renderJson(flavour: PortalFlavour = this.config.flavour, target?: string): string {
    const now = this.#now();
    if (target !== undefined) {
      const c = this.#find(target);
      return flavour === 'opennds' ? renderOpenNdsOne(c, this.config, now) : renderNodogsplashOne(c, now);
    }
    return renderJsonFor(
      flavour,
      this.#clients.values(),
      this.#clients.size,
      this.config,
      now,
      this.config.trustedMacs,
    );
  }

  renderStatus(): string {
    let authenticated = 0;
    for (const c of this.#clients.values()) if (c.state === 'Authenticated') authenticated++;
    const name = this.config.flavour === 'opennds' ? 'openNDS' : 'Nodogsplash';
    return (
      `==================\n${name} Status\n====\nVersion: ${this.config.version}\n` +
      `Gateway Name: [ ${this.config.gatewayName} ]\nManaged interface: ${this.config.clientIf}\n` +
      `Preemptive Authentication is ${this.config.preemptive ? 'Enabled' : 'Disabled'}\n====\n` +
      `Client authentications since start: ${this.#authenticatedSinceStart}\nCurrent clients: ${this.#clients.size}\n` +
      `Authenticated clients: ${authenticated}\n========\n` +
      (this.config.flavour === 'opennds' ? this.#statusClients() : '')
    );
  }

  /** openNDS's client sections of `ndsctl status` (src/util.c ndsctl_status), the lines sluice reads of them. */
  #statusClients(): string {
    let out = '';
    let i = 0;
    for (const c of this.#clients.values())
      out += `\nClient ${i++}\n  IP: ${c.ip} MAC: ${c.mac}\n  Token: ${c.token}\n  State: ${c.state}\n`;
    return out;
  }

  /** Answers like the ndsctl binary given these arguments (the subcommand first). */
  execute(argv: readonly string[]): ExecResult {
    return executeNdsctl(this, argv);
  }

  toJSON(): PortalModelJson {
    return {
      config: { ...this.config, trustedMacs: [...this.config.trustedMacs] },
      running: this.running,
      nextId: this.#nextId,
      seed: this.#seed,
      authenticatedSinceStart: this.#authenticatedSinceStart,
      clients: this.clients(),
    };
  }

  static fromJSON(json: PortalModelJson, opts: { clock?: Clock } = {}): PortalModel {
    if (typeof json !== 'object' || json === null || !Array.isArray(json.clients) || typeof json.config !== 'object') {
      throw new SluiceError('ERR_INVALID_ARGUMENT', 'not a PortalModel state');
    }
    const model = new PortalModel(json.config, {
      seed: json.seed,
      ...(opts.clock === undefined ? {} : { clock: opts.clock }),
    });
    model.running = json.running !== false;
    model.#nextId = json.nextId;
    model.#authenticatedSinceStart = json.authenticatedSinceStart ?? 0;
    for (const c of json.clients) model.#clients.set(c.mac, { ...c });
    return model;
  }

  #deauthClient(c: SimClient): void {
    if (this.config.flavour === 'opennds') {
      this.#clients.delete(c.mac);
      return;
    }
    c.state = 'Preauthenticated';
    c.downloadBytes = 0;
    c.uploadBytes = 0;
    c.lastActive = this.#now();
    c.sessionStart = 0;
    c.sessionEnd = 0;
    c.token = this.#token();
  }

  #newClient(mac: string, ip: string, clientType: string): SimClient {
    const trusted = this.config.trustedMacs.includes(mac);
    return {
      id: this.#nextId++,
      mac,
      ip,
      token: this.#token(),
      state: trusted ? 'Trusted' : 'Preauthenticated',
      clientType,
      sessionStart: 0,
      sessionEnd: 0,
      lastActive: this.#now(),
      custom: '',
      downloadRate: 0,
      uploadRate: 0,
      downloadPacketRate: 0,
      downloadBucketSize: 0,
      uploadPacketRate: 0,
      uploadBucketSize: 0,
      downloadQuota: 0,
      uploadQuota: 0,
      downloadBytes: 0,
      uploadBytes: 0,
    };
  }

  /** client_list_find_by_any: token, then IP, then MAC, exact strings (the portals store lowercase MACs). */
  #find(target: string): SimClient | undefined {
    const byMac = this.#clients.get(target);
    if (byMac !== undefined) return byMac;
    for (const c of this.#clients.values()) if (c.token === target || c.ip === target) return c;
    return undefined;
  }

  /** "%04hx%04hx" of two rand16(): 8 hex digits. xorshift32 so runs are reproducible from the stored seed. */
  #token(): string {
    let x = this.#seed;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#seed = x;
    return HEX_BYTE[x >>> 24]! + HEX_BYTE[(x >>> 16) & 255]! + HEX_BYTE[(x >>> 8) & 255]! + HEX_BYTE[x & 255]!;
  }
}

/** Two hex digits of each byte value: a token is four of them (toString(16) and padStart cost more, a client each). */
const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

function orDefault(value: number | undefined, fallback: number): number {
  return value === undefined || value === 0 ? fallback : value;
}
