/**
 * The captive-portal gate over ndsctl: the one serialized queue of portal calls (also lent to the usage engine via
 * runExclusive), the reads of the portal (one client, a listing, a late answer) and what they teach the valve (the
 * flavour, the clients' tokens and count). What an open decides in its turn is valve-open.ts, a close valve-close.ts;
 * what it remembers of each client between calls, client-notes.ts.
 */
import { normalizeMac } from '../mac.ts';
import { detectFlavour, parseClient, parseSnapshot } from './parse.ts';
import { silentLogger, type Log } from '../log.ts';
import { systemTimers, type Timers } from '../time.ts';
import type { SpawnFn } from './command.ts';
import { NdsctlRunner, type NdsctlExec, type NdsctlPriority } from './runner.ts';
import { TokenCalls, type BinauthTokens } from './token-calls.ts';
import { statusTokens } from './status-tokens.ts';
import { openNdsVersion, statusIsSafe } from './portal-version.ts';
import { closeInTurn, type CloseResult } from './valve-close.ts';
import { openInTurn, statusFirst, type OpenParts, type OpenResult } from './valve-open.ts';
import { ClientNotes } from './client-notes.ts';
import {
  type PortalClient,
  type PortalFlavour,
  type PortalSnapshot,
  type SafetyNet,
  type GateBrake,
  type GateCounter,
  type GateIpv6,
  type GateShaper,
} from './types.ts';

export interface ValveOptions {
  /** ndsctl as argv, e.g. ['/usr/bin/ndsctl'] or ['ip', 'netns', 'exec', 'router', 'ndsctl']. */
  command: readonly string[];
  /** Per ndsctl attempt. Default 5000 ms. */
  timeoutMs?: number;
  /** Default 'auto': detected from the first output and then kept. */
  flavour?: PortalFlavour | 'auto';
  /** openNDS 10.x `allow_preemptive_authentication`: lets open() try a MAC the portal has not seen yet. */
  preemptive?: boolean;
  maxAttempts?: number;
  busyBackoffMs?: number;
  /** The pause after a call that timed out, and its bound (runner.ts TimeoutBackoff): default 1 s and 30 s. */
  timeoutBackoffMs?: number;
  timeoutBackoffMaxMs?: number;
  spawn?: SpawnFn;
  timers?: Timers;
  env?: NodeJS.ProcessEnv;
  log?: Log;
  /** The portal's control socket, asked per call (see portal-socket.ts); undefined → run the command. */
  socketPath?: () => string | undefined;
  /** The most output one ndsctl call may print (`main.portal_output_max`); default 512 MiB. */
  maxOutputBytes?: number;
  /** The kernel quota (`main.kernel_quota`): set before a data session's auth, removed after a deauth. */
  brake?: GateBrake;
  /** Speed tiers (shaper.ts): a session's rates set before its auth, removed after a deauth. */
  shaper?: GateShaper;
  /** The kernel's counters (kernel-counting.ts): made before every auth, removed after every deauth. */
  counter?: GateCounter;
  /** The IPv6 gate (ipv6-gate.ts): opened once the gate is, closed before every deauth (a failed one included). */
  ipv6?: GateIpv6;
  /**
   * The client's address from the kernel's neighbour table (neighbours.ts; `hint`: the address the caller has, kept
   * when the table agrees), null when the table does not say one: lets open() auth at once (see there).
   */
  neighbour?: (mac: string, hint: string | null) => Promise<string | null>;
  /**
   * openNDS: the token the package's BinAuth kept for a client at its auth (binauth-tokens.ts), for deauths and
   * lookups by token when no listing showed it.
   */
  binauthTokens?: BinauthTokens;
  /** openNDS's version (`ndsctl status` is asked of 10.x only); default: what it wrote beside its control socket. */
  portalVersion?: () => Promise<string | undefined>;
  /** The pauses between the looks after an auth answered abnormally (look-after-auth.ts LOOK_AGAIN_MS). */
  lookAgainMs?: readonly number[];
}

export type { OpenResult } from './valve-open.ts';
export type { CloseResult } from './valve-close.ts';

/**
 * A listing's deadline grows by this per client it is expected to list: openNDS 10.3.1 runs a script for every listed
 * client (≈ 90 ms of its CPU each, docs/captive-portal.md "What a call costs openNDS"), so one deadline for every list
 * cut a listing of 64 clients short on a loaded router, and the portal then did it for nobody.
 */
export const LISTING_MS_PER_CLIENT = 250;

export class Valve {
  readonly runner: NdsctlRunner;
  readonly #log: Log;
  readonly #brake: GateBrake | undefined;
  readonly #shaper: GateShaper | undefined;
  readonly #counter: GateCounter | undefined;
  readonly #ipv6: GateIpv6 | undefined;
  /** What the valve remembers of each client between its calls (client-notes.ts). */
  readonly #notes = new ClientNotes();
  /** What an open in its turn uses (valve-open.ts). */
  readonly #openParts: OpenParts;
  #flavour: PortalFlavour | 'auto';
  /** openNDS only: auths, deauths and lookups by the token the portal showed for a MAC (token-calls.ts). */
  readonly #byToken: TokenCalls;
  /** Clients in the last listing read (this valve's or the meter's). */
  #listed = 0;
  /** The portal's version, when it can be read without a call (portal-version.ts). */
  readonly #version: () => Promise<string | undefined>;
  /** Whether `ndsctl status` may be asked (portal-version.ts), once the portal's version was read. */
  #statusSafe: boolean | undefined;

  constructor(opts: ValveOptions) {
    this.runner = new NdsctlRunner({
      command: opts.command,
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
      ...(opts.busyBackoffMs === undefined ? {} : { busyBackoffMs: opts.busyBackoffMs }),
      ...(opts.timeoutBackoffMs === undefined ? {} : { timeoutBackoffMs: opts.timeoutBackoffMs }),
      ...(opts.timeoutBackoffMaxMs === undefined ? {} : { timeoutBackoffMaxMs: opts.timeoutBackoffMaxMs }),
      ...(opts.spawn === undefined ? {} : { spawn: opts.spawn }),
      ...(opts.timers === undefined ? {} : { timers: opts.timers }),
      ...(opts.env === undefined ? {} : { env: opts.env }),
      ...(opts.log === undefined ? {} : { log: opts.log }),
      ...(opts.socketPath === undefined ? {} : { socketPath: opts.socketPath }),
      ...(opts.maxOutputBytes === undefined ? {} : { maxOutputBytes: opts.maxOutputBytes }),
      onLateAnswer: (args, stdout) => this.#lateAnswer(args, stdout),
    });
    this.#flavour = opts.flavour ?? 'auto';
    this.#log = opts.log ?? silentLogger;
    this.#brake = opts.brake;
    this.#shaper = opts.shaper;
    this.#counter = opts.counter;
    this.#ipv6 = opts.ipv6;
    this.#byToken = new TokenCalls(opts.binauthTokens);
    this.#openParts = {
      ...{ flavour: () => this.#flavour, preemptive: opts.preemptive ?? false, log: this.#log },
      ...{ brake: this.#brake, shaper: this.#shaper, counter: this.#counter, ipv6: this.#ipv6 },
      ...{ neighbour: opts.neighbour, byToken: this.#byToken, notes: this.#notes },
      ...{ timers: opts.timers ?? systemTimers, lookAgainMs: opts.lookAgainMs },
      client: (exec, mac) => this.#client(exec, mac),
      statusIsSafe: () => this.#statusIsSafe(),
      listed: (clients) => {
        this.#listed = clients;
      },
    };
    const socket = opts.socketPath;
    this.#version =
      opts.portalVersion ??
      (async () => {
        const path = socket?.();
        return path === undefined ? undefined : openNdsVersion(path);
      });
  }

  /** The portal flavour in use: configured, or detected from the first output ('auto' until then). */
  get flavour(): PortalFlavour | 'auto' {
    return this.#flavour;
  }

  /**
   * Opens the gate for `mac` in one turn of the portal's queue: 'opened' by this auth, 'already-open' (no auth), or
   * the error that says why not (the client unknown to the portal, blocked, the portal's failure). How the turn goes,
   * with or without a lookup before the auth, by the client's token or its MAC, is valve-open.ts's. `knownIp`: the
   * client's address as the caller has it; `knownIpListed`: the portal's own list showed it for this MAC moments ago.
   */
  async open(mac: string, safetyNet?: SafetyNet, knownIp?: string | null, knownIpListed = false): Promise<OpenResult> {
    const canonical = normalizeMac(mac);
    const leaveQueue = this.#byToken.enqueue(canonical);
    return this.runner
      .runExclusive(async (exec) => {
        leaveQueue();
        await statusFirst(this.#openParts, exec, canonical);
        const known = { safetyNet, ip: knownIp, listed: knownIpListed };
        const opened = await openInTurn(this.#openParts, exec, canonical, known);
        // Open (by this auth, an earlier run's, someone else's): its IPv6 follows the gate sluice now holds for it.
        await this.#ipv6?.open(canonical);
        return opened;
      })
      .finally(leaveQueue);
  }

  /**
   * Closes the gate: `ndsctl deauth`. 'not-found' when the portal answers no (exit 1): unknown MAC, or a client that
   * is not authenticated (openNDS answers "not found" for those too). Either way the gate is shut. On openNDS by the
   * client's token when a listing showed it or the package's BinAuth kept it at the auth (token-calls.ts), else, and
   * after a no by token, by MAC.
   */
  async close(mac: string): Promise<CloseResult> {
    return (await this.closeAndLook(mac, false)).result;
  }

  /**
   * close(), then (`look`) `json <mac>` in the same turn of the portal's queue: the client's state after the deauth
   * (null: not listed; undefined: not read). One client's look confirms a close where no tick lists every client; the
   * portal's own Yes on its control socket needs none (valve-close.ts).
   */
  async closeAndLook(mac: string, look = true): Promise<{ result: CloseResult; state: string | null | undefined }> {
    return this.#close(normalizeMac(mac), { look });
  }

  /**
   * close(), with `count` run in the same turn just before the deauth, after the client's traffic was stopped (sluice's
   * own stop, below): what the device passed up to its close is read there, while the portal still has its counters
   * (openNDS deletes them with the client). `count` gets one look at the client (`json <mac>`) to take or leave.
   */
  async closeAndCount<T>(
    mac: string,
    count: (client: () => Promise<PortalClient | null>) => Promise<T>,
  ): Promise<{ result: CloseResult; counted: T }> {
    const canonical = normalizeMac(mac);
    let counted: { v: T } | undefined;
    const before = async (exec: NdsctlExec): Promise<void> => {
      counted = { v: await count(() => this.#read(exec, canonical)) };
    };
    const { result } = await this.#close(canonical, { look: false, before });
    return { result, counted: counted!.v };
  }

  async #close(
    canonical: string,
    o: { look: boolean; before?: (exec: NdsctlExec) => Promise<void> },
  ): Promise<{ result: CloseResult; state: string | null | undefined }> {
    // sluice's own gate first, before the deauth's turn in the portal's queue: it needs no portal, so a deauth the
    // portal cannot make (hung behind an earlier call, down, or dead of one of its bugs: docs/captive-portal.md "Portal
    // restarts") leaves the client's IPv6 closed and its forwarded IPv4 stopped while the close waits or is retried;
    // the portal's answer, yes or no, releases the stop (valve-close.ts).
    await this.#ipv6?.close(canonical);
    const parts = {
      ...{ flavour: this.#flavour, byToken: this.#byToken, brake: this.#brake, counter: this.#counter },
      ...{ shaper: this.#shaper, ipv6: this.#ipv6, read: (exec: NdsctlExec, t: string) => this.#read(exec, t) },
    };
    return this.runner.runExclusive((exec) => closeInTurn(parts, exec, canonical, o), 'deauth');
  }

  /** A listing shows the client's gate down: a stop its close began goes (the portal gates it again). */
  async released(mac: string): Promise<void> {
    await this.#ipv6?.released?.(normalizeMac(mac));
  }

  /**
   * One client (`ndsctl json <mac>`), null when the portal does not know it. `priority` 'read' for the meter's final
   * reading of a cut: it goes after the deauths and before the tick's snapshot and the auths. `onStart`: called when
   * the call leaves the queue (the meter times the reading itself, not its wait).
   */
  async client(mac: string, priority: NdsctlPriority = 'auth', onStart?: () => void): Promise<PortalClient | null> {
    const canonical = normalizeMac(mac);
    return this.runner.runExclusive((exec) => {
      onStart?.();
      return this.#client(exec, canonical);
    }, priority);
  }

  /**
   * Every client in one `ndsctl json`; `priority` 'lookup' for reads a LAN request asked for (see NdsctlPriority).
   * `expectedClients`: how many the caller expects listed (the gate's sessions at start-up), for the deadline when no
   * listing told yet (LISTING_MS_PER_CLIENT).
   */
  snapshot(priority: NdsctlPriority = 'snapshot', expectedClients = 0): Promise<PortalSnapshot> {
    return this.runner.runExclusive(async (exec) => {
      const { stdout } = await exec(['json'], { timeoutMs: this.#listingTimeout(expectedClients) });
      const snapshot = parseSnapshot(stdout, this.#flavour);
      this.#flavour = snapshot.flavour;
      this.#listed = snapshot.clients.length;
      if (snapshot.flavour === 'opennds') this.#byToken.listed(snapshot);
      // The MACs the portal trusts pass its IPv4 gate without a session: their IPv6 follows.
      if (snapshot.trusted !== undefined) await this.#ipv6?.trusted?.(snapshot.trusted);
      return snapshot;
    }, priority);
  }

  /**
   * The portal's trusted MACs read again, for the IPv6 gate's `trusted` set (a config reload: an operator who changed
   * openNDS's `trustedmac` and restarted it reloads sluice). One listing on the main thread, asked as a LAN request's
   * lookup is (it never goes ahead of a gate command); false, and nothing asked, when there is no IPv6 gate to tell.
   * A portal that does not answer is logged, not thrown: the next listing read on the main thread tells the gate.
   */
  async rereadTrusted(): Promise<boolean> {
    if (this.#ipv6?.trusted === undefined) return false;
    try {
      await this.snapshot('lookup');
      return true;
    } catch (err) {
      this.#log.warn("could not read the portal's trusted MACs", { reason: (err as Error).message });
      return false;
    }
  }

  /**
   * A listing someone else read (the meter's, in its worker): each listed client's MAC and token, flat (mac, token,
   * …), and how long the portal took to list them (not used: a listing never goes first for the gates, a status
   * does). Only openNDS's tokens are used.
   */
  noteListing(pairs: readonly string[], flavour: PortalFlavour, _tookMs?: number): void {
    this.#listed = pairs.length / 2;
    if (flavour !== 'opennds' || this.#flavour === 'nodogsplash') return;
    this.#byToken.noteListing(pairs);
  }

  /**
   * Holds the ndsctl queue while `fn` runs (the usage engine fetches its own `ndsctl json` inside). Lent to the
   * usage engine for the tick's snapshot, so it ranks as 'snapshot' unless told otherwise.
   */
  runExclusive<T>(fn: (exec: NdsctlExec) => Promise<T>, priority: NdsctlPriority = 'snapshot'): Promise<T> {
    return this.runner.runExclusive(fn, priority);
  }

  /** The usage worker's own listing of the portal got no answer in time, or got one (NdsctlRunner.noteTimeout). */
  noteFetch(answered: boolean): void {
    if (answered) this.runner.noteAnswer();
    else this.runner.noteTimeout();
  }

  /**
   * The portal calls this valve made since start, by kind (NdsctlRunner.callCounts); `by_token`, once there were any:
   * how many of them named the client by its token.
   */
  callCounts(): Record<string, number> {
    const counts = this.runner.callCounts();
    if (this.#byToken.calls > 0) counts['by_token'] = this.#byToken.calls;
    return counts;
  }

  /** Lets queued calls finish, then refuses new ones. */
  shutdown(): Promise<void> {
    return this.runner.shutdown();
  }

  /** Kills an in-flight ndsctl and rejects queued calls (ERR_VALVE_CLOSED). */
  destroy(): Promise<void> {
    return this.runner.destroy();
  }

  /** One client by its token when known (the answer must name this MAC), else by MAC; its token noted. */
  async #client(exec: NdsctlExec, mac: string): Promise<PortalClient | null> {
    const byToken = this.#flavour === 'opennds';
    const client = byToken
      ? await this.#byToken.lookup(exec, mac, (e, target) => this.#read(e, target))
      : await this.#read(exec, mac);
    // The first answer told the flavour ('auto'): an openNDS client's token is noted as the lookup by token would.
    if (!byToken && client !== null && this.#flavour === 'opennds') this.#byToken.tokens.note(mac, client.token);
    if (client === null) this.#notes.unlisted(mac);
    else this.#notes.listed(mac);
    this.#notes.ip(mac, client?.ip);
    return client;
  }

  /** `json <mac|token>`: the client the portal finds, or null. */
  async #read(exec: NdsctlExec, target: string): Promise<PortalClient | null> {
    const { stdout } = await exec(['json', target]);
    if (this.#flavour === 'auto' && stdout.trim() !== '{}') this.#flavour = detectFlavour(stdout);
    return parseClient(stdout, this.#flavour);
  }

  /**
   * A listing or a status the portal answered after its caller had heard a timeout (the start-up reconcile's, a slow
   * burst's): its clients' tokens and count are noted, as the caller would have (the reconcile asks again, with a
   * deadline that fits them now).
   */
  #lateAnswer(args: readonly string[], stdout: string): void {
    try {
      if (args.length === 1 && args[0] === 'json' && this.#flavour !== 'nodogsplash') {
        const snapshot = parseSnapshot(stdout, this.#flavour);
        this.#listed = snapshot.clients.length;
        if (snapshot.flavour === 'opennds') this.#byToken.listed(snapshot);
      } else if (args.length === 1 && args[0] === 'status' && this.#flavour === 'opennds') {
        const pairs = statusTokens(stdout);
        this.#listed = pairs.length / 2;
        this.#byToken.tokens.noteListing(pairs);
      }
    } catch (err) {
      this.#log.debug("portal: a late answer's listing did not parse", { reason: (err as Error).message });
    }
  }

  /** Whether this openNDS answers `status` without risking its exit (10.x: portal-version.ts); read until known. */
  async #statusIsSafe(): Promise<boolean> {
    if (this.#statusSafe !== undefined) return this.#statusSafe;
    const version = await this.#version();
    if (version !== undefined) this.#statusSafe = statusIsSafe(version);
    return this.#statusSafe ?? false;
  }

  /** A listing's deadline: the runner's, and LISTING_MS_PER_CLIENT for each client it may list. */
  #listingTimeout(expected: number): number {
    const clients = Math.max(expected, this.#listed, this.#byToken.tokens.size);
    return this.runner.timeoutMs + LISTING_MS_PER_CLIENT * clients;
  }

  /** The client's IPv4/IPv6 address at the valve's last look (an open, a close), or null. */
  lastIp(mac: string): string | null {
    return this.#notes.lastIp(normalizeMac(mac));
  }
}
