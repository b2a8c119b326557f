import { SluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';
import { detectFlavour, parseClient, parseSnapshot } from './parse.ts';
import { openNdsAuthArgs } from './auth-args.ts';
import { silentLogger, type Log } from '../log.ts';
import { systemTimers, type Timers } from '../time.ts';
import type { SpawnFn } from './command.ts';
import { NdsctlRunner, type NdsctlExec, type NdsctlPriority } from './runner.ts';
import { TokenCalls, type BinauthTokens } from './token-calls.ts';
import { statusTokens } from './status-tokens.ts';
import { openNdsVersion, statusIsSafe } from './portal-version.ts';
import { classify, OPEN_STATES } from './gate-verdict.ts';
import { closeInTurn, type CloseResult } from './valve-close.ts';
import { lookAfterAuth, outcomeUnknown } from './look-after-auth.ts';
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

export type OpenResult = 'opened' | 'already-open';
export type { CloseResult } from './valve-close.ts';

/**
 * How long open() looks up first a client the portal did not know (the gate's retries of an unlisted client last a
 * minute: gate/gatekeeper.ts LISTING_WAIT_MS), and how many such clients it remembers.
 */
const UNLISTED_LOOKUP_MS = 60_000;
const UNLISTED_MAX = 256;

/**
 * A listing's deadline grows by this per client it is expected to list: openNDS 10.3.1 runs a script for every listed
 * client (≈ 90 ms of its CPU each, docs/captive-portal.md "What a call costs openNDS"), so one deadline for every list
 * cut a listing of 64 clients short on a loaded router, and the portal then did it for nobody.
 */
export const LISTING_MS_PER_CLIENT = 250;

/**
 * The captive-portal gate: opens and closes it per MAC and reads the portal's counters, all through one
 * serialized ndsctl runner (also lent to the usage engine via runExclusive).
 */
export class Valve {
  readonly runner: NdsctlRunner;
  readonly #preemptive: boolean;
  readonly #log: Log;
  readonly #brake: GateBrake | undefined;
  readonly #shaper: GateShaper | undefined;
  readonly #counter: GateCounter | undefined;
  readonly #ipv6: GateIpv6 | undefined;
  readonly #neighbour: ((mac: string, hint: string | null) => Promise<string | null>) | undefined;
  /** Clients the portal did not know at their last open, and when: looked up before an auth until it lists them. */
  readonly #unlisted = new Map<string, number>();
  /**
   * Clients whose last auth's outcome is unknown (ERR_NDSCTL_TIMEOUT: openNDS still does a request whose caller left;
   * an abnormal reply no look answered after): their next open asks first whether that auth took (#open). Bounded as
   * #unlisted.
   */
  readonly #authUnknown = new Set<string>();
  /** For the pauses between the looks after an abnormal answer to an auth (look-after-auth.ts). */
  readonly #timers: Timers;
  readonly #lookAgainMs: readonly number[] | undefined;
  #flavour: PortalFlavour | 'auto';
  /**
   * The address each client had when the valve last looked it up (open, close, client): what the gate tells a session.
   */
  readonly #ips = new Map<string, string>();
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
    this.#preemptive = opts.preemptive ?? false;
    this.#log = opts.log ?? silentLogger;
    this.#brake = opts.brake;
    this.#shaper = opts.shaper;
    this.#counter = opts.counter;
    this.#ipv6 = opts.ipv6;
    this.#neighbour = opts.neighbour;
    this.#byToken = new TokenCalls(opts.binauthTokens);
    this.#timers = opts.timers ?? systemTimers;
    this.#lookAgainMs = opts.lookAgainMs;
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
   * Opens the gate for `mac`. Checks the client's state first, in the same queue slot as the auth:
   * - Preauthenticated → `ndsctl auth` with the safety net → 'opened';
   * - already open (Authenticated, AuthBlocked, Trusted) → 'already-open' and NO auth (openNDS refuses to auth an
   *   authenticated client, and a re-auth would reset its counters: a top-up must never re-auth);
   * - unknown MAC → ERR_PORTAL_CLIENT_UNKNOWN (openNDS 9 only auths clients it has seen: keep the session and open
   *   again when the client shows up), unless `preemptive` is set;
   * - Blocked → ERR_PORTAL_CLIENT_BLOCKED.
   *
   * The lookup before the auth is skipped on openNDS when the address the kernel counters, the quota and the speed
   * tier need is known without it, and the auth goes at once: one portal call instead of two (each ≈ 28 ms + 2.5 ms
   * per listed client of openNDS's time under its client-list lock), and openNDS's own auth is the same check (it
   * auths only a Preauthenticated client and answers No to anything else, src/ndsctl_thread.c ndsctl_auth). A No is
   * then looked up and classified as above, and what was set for the gate in the kernel is taken back unless it is
   * open. The address is known when
   * - nothing needs one (no kernel quota for this gate, no speed tier, no counters): `knownIp`, if given, is noted;
   * - `knownIpListed`: `knownIp` (the client's address as the caller has it: a purchase through the LAN endpoint) is
   *   what the portal's own list showed for this MAC moments ago (the list the meter's ticks read);
   * - else the kernel's neighbour table holds one address for the MAC (`neighbour`, or `knownIp` among several):
   *   openNDS took its address from that table (neighbours.ts).
   * A client the portal did not know at its last open is looked up first (UNLISTED_LOOKUP_MS): the gate retries
   * those every fraction of a second until the portal lists them, and a lookup is one call where a refused auth is two.
   * nodogsplash keeps the lookup.
   *
   * On openNDS the auth and the lookup go by the client's token when the portal showed it beside this MAC (its
   * listing, an earlier lookup: tokens.ts), ≈ 28 ms flat instead of 28 ms + 2.5 ms per listed client. A lookup by
   * token answers for the MAC only if its answer names that MAC (else the MAC's is asked). A no to an auth by a token
   * from an earlier reading is not taken as the client's answer (the portal may have re-listed the client under a new
   * one): the token is dropped and the auth goes by the MAC as above; a no to the token the lookup just read is.
   * When the gate's turn comes with its token unknown, on openNDS 10 one `ndsctl status` first (every client's token)
   * may cost less than the auths by MAC of it and the gates waiting behind it (call-costs.ts decides on the durations
   * seen). After an auth of this client whose outcome is unknown, its next open looks it up first (#open).
   */
  async open(mac: string, safetyNet?: SafetyNet, knownIp?: string | null, knownIpListed = false): Promise<OpenResult> {
    const canonical = normalizeMac(mac);
    const leaveQueue = this.#byToken.enqueue(canonical);
    return this.runner
      .runExclusive(async (exec) => {
        leaveQueue();
        await this.#statusFirst(exec, canonical);
        const opened = await this.#open(exec, canonical, safetyNet, { ip: knownIp, listed: knownIpListed });
        // Open (by this auth, an earlier run's, someone else's): its IPv6 follows the gate sluice now holds for it.
        await this.#ipv6?.open(canonical);
        return opened;
      })
      .finally(leaveQueue);
  }

  /** `known`: the client's address as the caller has it, and whether the portal's own list showed it (open()). */
  async #open(
    exec: NdsctlExec,
    canonical: string,
    safetyNet: SafetyNet | undefined,
    known: { ip: string | null | undefined; listed: boolean },
  ): Promise<OpenResult> {
    const needsIp =
      (safetyNet?.dataBytes !== undefined && this.#brake !== undefined) ||
      (safetyNet?.rates !== undefined && this.#shaper !== undefined) ||
      this.#counter !== undefined;
    const given = typeof known.ip === 'string' && known.ip !== '' ? known.ip : null;
    // This client's last auth's outcome is unknown: the portal may have done it, the client passing bytes on the
    // counters made for it, which an auth at once would make afresh (a new epoch from 0) before the portal's no. So it
    // is looked up first, by the token the BinAuth kept since its last deauth if any (the portal did that auth); only
    // then: a token kept without such an auth may be another of this MAC's clients (a device on a new address).
    const lookFirst = this.#authUnknown.delete(canonical);
    // The token it notes (if kept) is what the lookup below goes by; whether one was kept decides nothing here.
    if (lookFirst && this.#flavour === 'opennds') await this.#byToken.keptAtAuth(canonical);
    const address = lookFirst ? null : await this.#addressWithoutLookup(canonical, needsIp, given, known.listed);
    const direct = address !== null;
    let before: PortalClient | null = null;
    if (!direct) {
      before = await this.#client(exec, canonical);
      const verdict = classify(canonical, before, this.#preemptive);
      if (verdict !== 'auth') return verdict;
    }
    const flavour = this.#flavour === 'auto' ? 'opennds' : this.#flavour; // detected by the lookup, if it was 'auto'
    // nodogsplash's ndsctl takes no auth arguments (more than one prints the usage and exits 1).
    const args = flavour === 'nodogsplash' ? ['auth', canonical] : openNdsAuthArgs(canonical, safetyNet);
    const token = flavour === 'opennds' ? this.#byToken.tokens.of(canonical) : undefined;
    if (flavour === 'nodogsplash' && safetyNet !== undefined)
      this.#log.debug('nodogsplash has no per-client safety net', { mac: canonical });
    // The portal's address for the client: its answer to the lookup, or on the direct path the one known without.
    const ip = direct ? address : (before?.ip ?? null);
    // Before the auth: the first packet through the gate is already limited (a burst at line rate would be free).
    if (safetyNet?.rates !== undefined && ip !== null)
      await this.#shaper?.set({ mac: canonical, ip, ...safetyNet.rates });
    // Last before the auth, the quota, the counters and the client's IPv6 together (one nft run: nft-batch.ts): the
    // counters start at 0 as close to the gate's opening as can be (a few packets of a client already let through, on
    // the direct path's 'already-open', are a new epoch from 0: not billed twice). Its IPv6 passes from the portal's
    // answer on, or a moment before it: the session is paid, and every byte is counted and braked from the first (the
    // same transaction). An auth that does not open the gate takes it back.
    const ipv6Ahead = this.#ipv6?.isOpen(canonical) === false;
    await Promise.all([
      safetyNet?.dataBytes === undefined ? undefined : this.#brake?.beforeAuth(canonical, ip, safetyNet.dataBytes),
      this.#counter?.beforeAuth(canonical, ip),
      ipv6Ahead ? this.#ipv6?.open(canonical) : undefined,
    ]);
    return this.#auth(exec, canonical, { args, token, address, safetyNet }).catch(async (err: unknown) => {
      if (ipv6Ahead) await this.#ipv6?.withdraw(canonical);
      throw err;
    });
  }

  /** The auth itself, and what a no or an abnormal answer to it means (open()). */
  async #auth(
    exec: NdsctlExec,
    canonical: string,
    a: { args: string[]; token: string | undefined; address: string | null; safetyNet: SafetyNet | undefined },
  ): Promise<OpenResult> {
    // `address`: the direct path's (no lookup before the auth), else null.
    const { args, token, address, safetyNet } = a;
    try {
      // A token the lookup just read names this client: its no is the client's. One from an earlier reading may be
      // spent: its no is asked again by MAC.
      if (token === undefined) await this.#byToken.timed(exec, args, 'mac');
      else if (address === null) await this.#byToken.timed(exec, openNdsAuthArgs(token, safetyNet), 'token');
      else if (!(await this.#byToken.byToken(exec, canonical, openNdsAuthArgs(token, safetyNet))))
        await this.#byToken.timed(exec, args, 'mac');
      if (address !== null) this.#ips.set(canonical, address);
      return 'opened';
    } catch (err) {
      if (err instanceof SluiceError && err.code === 'ERR_NDSCTL_TIMEOUT') this.#noteAuthUnknown(canonical);
      if (err instanceof SluiceError && err.code === 'ERR_NDSCTL_FAILED') {
        // An abnormal reply (or a call cut short) does not say whether the auth took. Seen in the lab: openNDS 9.10
        // and 10.3.1 authenticated the client while their reply to the auth was abnormal. A client open now is open by
        // this auth (it was Preauthenticated, or the portal would have refused it with exit 1), on the counters made
        // for it: 'opened', its first reading billed in full. The look is asked again while the portal answers nothing
        // (restarting, its socket closed again): until its word, nothing of the gate's kernel side is taken back.
        const look = await lookAfterAuth(() => this.#client(exec, canonical), this.#timers, this.#lookAgainMs);
        if (!look.answered) {
          this.#noteAuthUnknown(canonical);
          throw outcomeUnknown(err, look.last);
        }
        const after = look.client;
        if (after === null || !OPEN_STATES.has(after.state)) throw err;
        this.#log.info('portal: auth answered abnormally but the client is open', {
          mac: canonical,
          reason: err.message,
        });
        if (address !== null) this.#ips.set(canonical, address);
        return 'opened';
      }
      if (!(err instanceof SluiceError) || err.code !== 'ERR_NDSCTL_REJECTED') throw err;
      // The portal may have changed the client between our look and our auth (splash page, departure), or, on
      // the direct path, it was never Preauthenticated.
      const after = await this.#client(exec, canonical);
      if (after !== null && OPEN_STATES.has(after.state)) return 'already-open';
      // The gate stays closed: what the direct path set for it in the kernel goes (the lookup path set it for a
      // client the portal had just shown Preauthenticated, and its next try sets it afresh anyway).
      if (address !== null) await this.#refused(canonical);
      if (after === null) {
        this.#noteUnlisted(canonical);
        throw new SluiceError('ERR_PORTAL_CLIENT_UNKNOWN', `the portal does not know client ${canonical}`, {
          cause: err,
          details: { mac: canonical },
        });
      }
      if (address !== null) classify(canonical, after, this.#preemptive, err);
      throw err;
    }
  }

  /**
   * On openNDS 10 (9.x may exit at a status: portal-version.ts), with this gate's token unknown (and others waiting
   * whose tokens are unknown too), one `ndsctl status` first when it and their auths by token cost less than their
   * auths by MAC (call-costs.ts): it shows every client's token (status-tokens.ts). A failed status changes nothing.
   */
  async #statusFirst(exec: NdsctlExec, mac: string): Promise<void> {
    const burst = this.#flavour === 'opennds' ? this.#byToken.statusFirst(mac) : null;
    if (burst === null || !(await this.#statusIsSafe())) return;
    const started = performance.now();
    try {
      const { stdout } = await exec(['status']);
      const pairs = statusTokens(stdout);
      this.#byToken.noteStatus(pairs, performance.now() - started);
      this.#listed = pairs.length / 2;
      this.#log.debug('portal: its status read first for gates whose tokens it shows', {
        waiting: burst.waiting,
        took_ms: Math.round(performance.now() - started),
      });
    } catch (err) {
      this.#log.debug('portal: the status read first failed', { reason: (err as Error).message });
    }
  }

  /** The address open() may auth with at once (see there), or null: look the client up first. */
  async #addressWithoutLookup(
    mac: string,
    needsIp: boolean,
    given: string | null,
    givenListed: boolean,
  ): Promise<string | null> {
    if (this.#flavour !== 'opennds') return null;
    if (given !== null && (!needsIp || givenListed)) return given;
    const since = this.#unlisted.get(mac);
    if (since !== undefined && Date.now() - since < UNLISTED_LOOKUP_MS) return null;
    this.#unlisted.delete(mac);
    return (await this.#neighbour?.(mac, given)) ?? null;
  }

  #noteAuthUnknown(mac: string): void {
    if (this.#authUnknown.size >= UNLISTED_MAX) this.#authUnknown.delete(this.#authUnknown.values().next().value!);
    this.#authUnknown.add(mac);
  }

  #noteUnlisted(mac: string): void {
    // Bounded: the oldest go first (a Map keeps the order they were noted in).
    if (this.#unlisted.size >= UNLISTED_MAX) this.#unlisted.delete(this.#unlisted.keys().next().value!);
    this.#unlisted.set(mac, Date.now());
  }

  /** A direct auth refused and the gate not open: the kernel's side of it taken back. Never throws. */
  async #refused(mac: string): Promise<void> {
    await Promise.all([
      this.#brake?.afterDeauth(mac),
      (this.#counter?.afterRefusal ?? this.#counter?.afterDeauth)?.(mac),
    ]);
    await this.#shaper?.remove(mac);
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
    if (client === null) this.#noteUnlisted(mac);
    else this.#unlisted.delete(mac);
    if (client?.ip) this.#ips.set(mac, client.ip);
    else this.#ips.delete(mac);
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
    return this.#ips.get(normalizeMac(mac)) ?? null;
  }
}
