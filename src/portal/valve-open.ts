/**
 * The valve's open inside its turn of the portal's queue (Valve.open): what it decides from what it knows of the
 * client and from the portal's answers. The queue it waits in, the reads and the close are valve.ts's and
 * valve-close.ts's.
 *
 * The client's state is checked first, in the same queue slot as the auth:
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
 * A client the portal did not know at its last open is looked up first (client-notes.ts UNLISTED_LOOKUP_MS): the gate
 * retries those every fraction of a second until the portal lists them, and a lookup is one call where a refused auth
 * is two. nodogsplash keeps the lookup.
 *
 * On openNDS the auth and the lookup go by the client's token when the portal showed it beside this MAC (its
 * listing, an earlier lookup: tokens.ts), ≈ 28 ms flat instead of 28 ms + 2.5 ms per listed client. A lookup by
 * token answers for the MAC only if its answer names that MAC (else the MAC's is asked). A no to an auth by a token
 * from an earlier reading is not taken as the client's answer (the portal may have re-listed the client under a new
 * one): the token is dropped and the auth goes by the MAC as above; a no to the token the lookup just read is.
 * When the gate's turn comes with its token unknown, on openNDS 10 one `ndsctl status` first (every client's token)
 * may cost less than the auths by MAC of it and the gates waiting behind it (call-costs.ts decides on the durations
 * seen). After an auth of this client whose outcome is unknown, its next open looks it up first.
 */
import { SluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { Timers } from '../time.ts';
import { openNdsAuthArgs } from './auth-args.ts';
import type { ClientNotes } from './client-notes.ts';
import { classify, OPEN_STATES } from './gate-verdict.ts';
import { AuthOutcomeUnknown, lookAfterAuth } from './look-after-auth.ts';
import { PortalReplyLost } from './ndsctl-outcome.ts';
import type { NdsctlExec } from './runner.ts';
import { statusTokens } from './status-tokens.ts';
import type { TokenCalls } from './token-calls.ts';
import type { GateBrake, GateCounter, GateIpv6, GateShaper, PortalClient, PortalFlavour, SafetyNet } from './types.ts';

export type OpenResult = 'opened' | 'already-open';

/** The valve's parts an open uses. */
export interface OpenParts {
  /** The flavour as the valve knows it now: a lookup in the turn may detect it. */
  flavour: () => PortalFlavour | 'auto';
  preemptive: boolean;
  log: Log;
  brake: GateBrake | undefined;
  shaper: GateShaper | undefined;
  counter: GateCounter | undefined;
  ipv6: GateIpv6 | undefined;
  neighbour: ((mac: string, hint: string | null) => Promise<string | null>) | undefined;
  byToken: TokenCalls;
  notes: ClientNotes;
  /** For the pauses between the looks after an abnormal answer to an auth (look-after-auth.ts). */
  timers: Timers;
  lookAgainMs: readonly number[] | undefined;
  /** One client by its token when known, else by MAC, noted (the valve's lookup). */
  client: (exec: NdsctlExec, mac: string) => Promise<PortalClient | null>;
  /** Whether this openNDS answers `status` without risking its exit (portal-version.ts). */
  statusIsSafe: () => Promise<boolean>;
  /** A full listing read in the turn: how many clients the portal lists. */
  listed: (clients: number) => void;
}

/**
 * On openNDS 10 (9.x may exit at a status: portal-version.ts), with this gate's token unknown (and others waiting
 * whose tokens are unknown too), one `ndsctl status` first when it and their auths by token cost less than their
 * auths by MAC (call-costs.ts): it shows every client's token (status-tokens.ts). A failed status changes nothing.
 */
export async function statusFirst(p: OpenParts, exec: NdsctlExec, mac: string): Promise<void> {
  const burst = p.flavour() === 'opennds' ? p.byToken.statusFirst(mac) : null;
  if (burst === null || !(await p.statusIsSafe())) return;
  const started = performance.now();
  try {
    const { stdout } = await exec(['status']);
    const pairs = statusTokens(stdout);
    p.byToken.noteStatus(pairs, performance.now() - started);
    p.listed(pairs.length / 2);
    p.log.debug('portal: its status read first for gates whose tokens it shows', {
      waiting: burst.waiting,
      took_ms: Math.round(performance.now() - started),
    });
  } catch (err) {
    p.log.debug('portal: the status read first failed', { reason: (err as Error).message });
  }
}

/**
 * One open in the caller's turn. `o.ip`: the client's address as the caller has it, `o.listed`: whether the portal's
 * own list showed it (see the top).
 */
export async function openInTurn(
  p: OpenParts,
  exec: NdsctlExec,
  canonical: string,
  o: { safetyNet: SafetyNet | undefined; ip: string | null | undefined; listed: boolean },
): Promise<OpenResult> {
  const { safetyNet } = o;
  const needsIp =
    (safetyNet?.dataBytes !== undefined && p.brake !== undefined) ||
    (safetyNet?.rates !== undefined && p.shaper !== undefined) ||
    p.counter !== undefined;
  const given = typeof o.ip === 'string' && o.ip !== '' ? o.ip : null;
  // This client's last auth's outcome is unknown: the portal may have done it, the client passing bytes on the
  // counters made for it, which an auth at once would make afresh (a new epoch from 0) before the portal's no. So it
  // is looked up first, by the token the BinAuth kept since its last deauth if any (the portal did that auth); only
  // then: a token kept without such an auth may be another of this MAC's clients (a device on a new address).
  const lookFirst = p.notes.takeAuthUnknown(canonical);
  // The token it notes (if kept) is what the lookup below goes by; whether one was kept decides nothing here.
  if (lookFirst && p.flavour() === 'opennds') await p.byToken.keptAtAuth(canonical);
  const address = lookFirst ? null : await addressWithoutLookup(p, canonical, needsIp, { ip: given, listed: o.listed });
  const direct = address !== null;
  let before: PortalClient | null = null;
  if (!direct) {
    before = await p.client(exec, canonical);
    const verdict = classify(canonical, before, p.preemptive);
    if (verdict !== 'auth') return verdict;
  }
  const now = p.flavour();
  const flavour = now === 'auto' ? 'opennds' : now; // detected by the lookup, if it was 'auto'
  // nodogsplash's ndsctl takes no auth arguments (more than one prints the usage and exits 1).
  const args = flavour === 'nodogsplash' ? ['auth', canonical] : openNdsAuthArgs(canonical, safetyNet);
  const token = flavour === 'opennds' ? p.byToken.tokens.of(canonical) : undefined;
  if (flavour === 'nodogsplash' && safetyNet !== undefined)
    p.log.debug('nodogsplash has no per-client safety net', { mac: canonical });
  // The portal's address for the client: its answer to the lookup, or on the direct path the one known without.
  const ip = direct ? address : (before?.ip ?? null);
  // Before the auth: the first packet through the gate is already limited (a burst at line rate would be free).
  if (safetyNet?.rates !== undefined && ip !== null) await p.shaper?.set({ mac: canonical, ip, ...safetyNet.rates });
  // Last before the auth, the quota, the counters and the client's IPv6 together (one nft run: nft-batch.ts): the
  // counters start at 0 as close to the gate's opening as can be (a few packets of a client already let through, on
  // the direct path's 'already-open', are a new epoch from 0: not billed twice). Its IPv6 passes from the portal's
  // answer on, or a moment before it: the session is paid, and every byte is counted and braked from the first (the
  // same transaction). An auth that does not open the gate takes it back.
  const ipv6Ahead = p.ipv6?.isOpen(canonical) === false;
  await Promise.all([
    safetyNet?.dataBytes === undefined ? undefined : p.brake?.beforeAuth(canonical, ip, safetyNet.dataBytes),
    p.counter?.beforeAuth(canonical, ip),
    ipv6Ahead ? p.ipv6?.open(canonical) : undefined,
  ]);
  return auth(p, exec, canonical, { args, token, address, safetyNet }).catch(async (err: unknown) => {
    if (ipv6Ahead) await p.ipv6?.withdraw(canonical);
    throw err;
  });
}

/** The auth itself, and what a no or an abnormal answer to it means. */
async function auth(
  p: OpenParts,
  exec: NdsctlExec,
  canonical: string,
  a: { args: string[]; token: string | undefined; address: string | null; safetyNet: SafetyNet | undefined },
): Promise<OpenResult> {
  // `address`: the direct path's (no lookup before the auth), else null.
  const { args, token, address, safetyNet } = a;
  try {
    // A token the lookup just read names this client: its no is the client's. One from an earlier reading may be
    // spent: its no is asked again by MAC.
    if (token === undefined) await p.byToken.timed(exec, args, 'mac');
    else if (address === null) await p.byToken.timed(exec, openNdsAuthArgs(token, safetyNet), 'token');
    else if (!(await p.byToken.byToken(exec, canonical, openNdsAuthArgs(token, safetyNet))))
      await p.byToken.timed(exec, args, 'mac');
    if (address !== null) p.notes.ip(canonical, address);
    return 'opened';
  } catch (err) {
    if (err instanceof SluiceError && err.code === 'ERR_NDSCTL_TIMEOUT') p.notes.authUnknown(canonical);
    if (err instanceof PortalReplyLost || (err instanceof SluiceError && err.code === 'ERR_NDSCTL_FAILED')) {
      // An abnormal reply, a call cut short, or a connection the portal dropped once the auth went out (exit 3,
      // "error reading": not a portal that was down before it) does not say whether the auth took. Seen in the lab:
      // openNDS 9.10 and 10.3.1 authenticated the client while their reply to the auth was abnormal. A client open now
      // is open by this auth (it was Preauthenticated, or the portal would have refused it with exit 1), on the
      // counters made for it: 'opened', its first reading billed in full. The look is asked again while the portal
      // answers nothing (restarting, its socket closed again): until its word, nothing of the gate's kernel side is
      // taken back.
      const look = await lookAfterAuth(() => p.client(exec, canonical), p.timers, p.lookAgainMs);
      if (!look.answered) {
        p.notes.authUnknown(canonical);
        throw new AuthOutcomeUnknown(err, look.last);
      }
      const after = look.client;
      if (after === null || !OPEN_STATES.has(after.state)) throw err;
      p.log.info('portal: auth answered abnormally but the client is open', { mac: canonical, reason: err.message });
      if (address !== null) p.notes.ip(canonical, address);
      return 'opened';
    }
    if (!(err instanceof SluiceError) || err.code !== 'ERR_NDSCTL_REJECTED') throw err;
    // The portal may have changed the client between our look and our auth (splash page, departure), or, on
    // the direct path, it was never Preauthenticated.
    const after = await p.client(exec, canonical);
    if (after !== null && OPEN_STATES.has(after.state)) return 'already-open';
    // The gate stays closed: what the direct path set for it in the kernel goes (the lookup path set it for a
    // client the portal had just shown Preauthenticated, and its next try sets it afresh anyway).
    if (address !== null) await refused(p, canonical);
    if (after === null) {
      p.notes.unlisted(canonical);
      throw new SluiceError('ERR_PORTAL_CLIENT_UNKNOWN', `the portal does not know client ${canonical}`, {
        cause: err,
        details: { mac: canonical },
      });
    }
    if (address !== null) classify(canonical, after, p.preemptive, err);
    throw err;
  }
}

/** The address the open may auth with at once (see the top), or null: look the client up first. */
async function addressWithoutLookup(
  p: OpenParts,
  mac: string,
  needsIp: boolean,
  given: { ip: string | null; listed: boolean },
): Promise<string | null> {
  if (p.flavour() !== 'opennds') return null;
  if (given.ip !== null && (!needsIp || given.listed)) return given.ip;
  if (p.notes.recentlyUnlisted(mac)) return null;
  return (await p.neighbour?.(mac, given.ip)) ?? null;
}

/** A direct auth refused and the gate not open: the kernel's side of it taken back. Never throws. */
async function refused(p: OpenParts, mac: string): Promise<void> {
  await Promise.all([p.brake?.afterDeauth(mac), (p.counter?.afterRefusal ?? p.counter?.afterDeauth)?.(mac)]);
  await p.shaper?.remove(mac);
}
