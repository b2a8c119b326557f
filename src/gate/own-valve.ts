/**
 * What the gate drives under `main.portal 'sluice'`: each opening is one nft transaction of everything it changes in
 * the kernel (the own gate's set elements, the kernel quota, the counters, the IPv6 gate), all made or none; a close is
 * one of the gate's elements and its IPv6, then, once its flows are gone from any flowtable, one of its quota and
 * counters (close()). The modules hand their lines to a held run (portal/nft-batch.ts heldRun) and note them as
 * made; the opening runs them through the daemon's batcher as one batch, which goes to nft with the other openings and
 * closes of that moment in one run (a batch nft refuses is run again alone: another's failure is not this one's).
 * Nothing waits in the portal's queue: sluice is the portal, and a device's openings and closes are in order by the
 * gate's own rules (a close in flight goes before the next opening of that MAC: gate-opens.ts).
 *
 * When nft refuses the transaction, nothing of it was made, and each module's part runs alone (as the batcher splits a
 * merged run): a module whose part nft refuses alone rebuilds its table from what it knows. When the gate's own part
 * is refused too, the opening fails with ERR_GATE_NFT and nft's message, and what was made for the device is taken
 * back (it stays closed, all or nothing; the gate is tried again); a close fails the same way, the device passing
 * as before while its quota, counters and IPv6 gate follow what their modules hold, and the gate tries it again.
 *
 * The listings (`snapshot`, the meter's and the reconcile's) still go through the valve to the gate's socket.
 */
import { SluiceError, toSluiceError } from '../errors.ts';
import { normalizeMac } from '../mac.ts';
import type { Log } from '../log.ts';
import {
  HeldRuns,
  type Ipv6Gate,
  type KernelCounters,
  type KernelQuota,
  type MeteringGuard,
  type NeighbourRead,
  type NftRun,
  type OwnGate,
  type SafetyNet,
  type Shaper,
  type Valve,
} from '../portal/index.ts';
import { resolvedAddresses } from '../portal/own-gate.ts';
import type { SessionReadView } from '../sessions/index.ts';
import type { GateValve } from './options.ts';
import { brakeAtOpening } from './shared-brake.ts';

export interface OwnValveParts {
  /** The valve over the gate's socket: listings, one client's look, and what a listing tells the IPv6 gate. */
  valve: Pick<Valve, 'snapshot' | 'client' | 'callCounts' | 'released'>;
  gate: OwnGate;
  /** The daemon's nft batcher. */
  nft: NftRun;
  /**
   * `/proc/net/arp`'s text, null when it cannot be read; `accept`: whether an earlier read answers (a shared read:
   * portal/neighbours.ts sharedNeighbourTable).
   */
  neighbours: NeighbourRead;
  /** The hotspot's devices: a device is opened at the addresses the neighbour table resolved for it on them. */
  devices: readonly string[];
  kernelQuota: KernelQuota;
  counters: KernelCounters;
  ipv6Gate: Ipv6Gate;
  metering: Pick<MeteringGuard, 'admit'>;
  shaper: Pick<Shaper, 'set' | 'remove'> | null;
  /** Deletes a closed device's conntrack entries (portal/flow-flush.ts). */
  flushFlows: (mac: string) => Promise<unknown>;
  sessions: Pick<SessionReadView, 'byMac'>;
  log: Log;
}

type OpenResult = Awaited<ReturnType<GateValve['open']>>;
type CloseResult = Awaited<ReturnType<GateValve['close']>>;

/**
 * How long a closed device keeps its quota and counters after its conntrack entries went: a flowtable lets go of a
 * flow whose entry was deleted at its next garbage collection (every second), and until then that flow skips the
 * gate's forward chain; only the LAN device's netdev hooks, where they sit, still see it.
 */
export const OFFLOAD_SETTLE_MS = 2000;

export function ownGateValve(
  p: OwnValveParts,
  settleMs = OFFLOAD_SETTLE_MS,
): GateValve & Required<Pick<GateValve, 'closeAndLook' | 'closeAndCount' | 'lastIp'>> {
  const ips = new Map<string, string>();
  const settling = new Settling(settleMs, p.log);
  const closeAndLook = (mac: string) => close(p, settling, normalizeMac(mac));
  return {
    open: (mac, safetyNet, knownIp) => {
      const canonical = normalizeMac(mac);
      // An opening squares whatever a close left (its counters, quota and stop): that close's settle is moot.
      settling.cancel(canonical);
      return open(p, ips, canonical, { safetyNet, knownIp });
    },
    close: async (mac) => (await closeAndLook(mac)).result,
    closeAndLook,
    // The count runs once the gate's elements and the device's flows went, before its counters may settle away.
    closeAndCount: async (mac, count) => {
      const canonical = normalizeMac(mac);
      let counted: { v: Awaited<ReturnType<typeof count>> } | undefined;
      const afterFlush = async (): Promise<void> => {
        counted = { v: await count(() => p.valve.client(canonical)) };
      };
      const { result } = await close(p, settling, canonical, afterFlush);
      return { result, counted: counted!.v };
    },
    opensEarly: true,
    snapshot: (...args) => p.valve.snapshot(...args),
    callCounts: () => p.valve.callCounts(),
    released: (mac) => p.valve.released(mac),
    lastIp: (mac) => ips.get(normalizeMac(mac)) ?? null,
  };
}

/** The closes whose quota and counters go a while after their flows were deleted (one timer a device). */
class Settling {
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #ms: number;
  readonly #log: Log;

  constructor(ms: number, log: Log) {
    this.#ms = ms;
    this.#log = log;
  }

  has(mac: string): boolean {
    return this.#timers.has(mac);
  }

  cancel(mac: string): void {
    clearTimeout(this.#timers.get(mac));
    this.#timers.delete(mac);
  }

  /** `fn` in a while, unless an opening or another close of the device comes first. */
  after(mac: string, fn: () => Promise<void>): void {
    this.cancel(mac);
    const timer = setTimeout(() => {
      this.#timers.delete(mac);
      fn().catch((err: unknown) =>
        this.#log.warn("own gate: a close's settle failed", { mac, reason: toSluiceError(err).message }),
      );
    }, this.#ms);
    // A daemon that stops meanwhile leaves them to the stop's own timeout and the next start's reconcile.
    timer.unref();
    this.#timers.set(mac, timer);
  }
}

async function open(
  p: OwnValveParts,
  ips: Map<string, string>,
  mac: string,
  given: { safetyNet: SafetyNet | undefined; knownIp: string | null | undefined },
): Promise<OpenResult> {
  const { safetyNet, knownIp } = given;
  // An earlier read answers when it holds the device (at the address the purchase came from, when known).
  const table = await p.neighbours((t) => {
    const at = resolvedAddresses(t, mac, p.devices, p.neighbours.parse);
    return at.length > 0 && (!knownIp || at.includes(knownIp));
  });
  const seen = table === null ? [] : resolvedAddresses(table, mac, p.devices, p.neighbours.parse);
  const wasOpen = p.gate.isOpen(mac);
  if (!wasOpen && seen.length === 0)
    throw new SluiceError('ERR_PORTAL_CLIENT_UNKNOWN', `the gate has not seen client ${mac} yet`, { details: { mac } });
  const ip = knownIp && seen.includes(knownIp) ? knownIp : (seen[0] ?? null);
  await p.metering.admit(mac);
  // Before the gate opens: the first packet through it is already limited.
  if (safetyNet?.rates !== undefined && ip !== null) await p.shaper?.set({ mac, ip, ...safetyNet.rates });
  const held = new HeldRuns(p.nft);
  const quota = {
    has: (m: string) => p.kernelQuota.has(m),
    set: (m: string, limit: number) => p.kernelQuota.set(m, limit, m === mac ? held.for('quota') : undefined),
    // A purchase's other devices lowered first, in a run of their own (they pass already).
    share: (shares: ReadonlyArray<{ mac: string; shareBytes: number }>) => p.kernelQuota.share(shares),
  };
  const ipv6Ahead = !p.ipv6Gate.isOpen(mac);
  // The counters from 0 and the quota in the same transaction as the gate: every byte through it is counted and
  // braked from the first (a device already open starts a new epoch, as at an openNDS auth).
  await Promise.all([
    safetyNet?.dataBytes === undefined
      ? undefined
      : brakeAtOpening(quota, (m) => p.sessions.byMac(m), mac, safetyNet.dataBytes),
    p.counters.count(mac, held.for('counters')),
    p.ipv6Gate.open(mac, held.for('ipv6')),
  ]);
  const change = p.gate.opening(mac, seen);
  if (change !== null) await held.for('gate')(['-f', '-'], change.script);
  try {
    await transact(p, { what: 'opening', mac, held, gateFirst: false });
  } catch (err) {
    // The gate stays closed: what was made for it goes (a device already open keeps its own).
    if (!wasOpen)
      await Promise.all([
        ipv6Ahead ? p.ipv6Gate.withdraw(mac) : undefined,
        p.kernelQuota.remove(mac),
        p.counters.uncount(mac),
        p.shaper?.remove(mac),
      ]);
    throw err;
  }
  change?.made();
  if (ip !== null) ips.set(mac, ip);
  return change === null ? 'already-open' : 'opened';
}

/**
 * The gate's elements and the device's IPv6 go, one transaction; then its conntrack entries go. An offloaded flow
 * skips the gate's forward chain but not the LAN device's netdev hooks, where the quota and the counters sit, and a
 * flowtable lets go of it only at its next garbage collection after its entry went: so they stay until then
 * (Settling, not on the close's answer), and whatever it moves meanwhile is counted and braked. `afterFlush`: run
 * once the flows went, while the counters are still there (a handover's last reading, closeAndCount).
 */
async function close(
  p: OwnValveParts,
  settling: Settling,
  mac: string,
  afterFlush?: () => Promise<void>,
): Promise<{ result: CloseResult; state: string | null }> {
  // Closed, its flows deleted, its quota and counters waiting for a flowtable's cleanup: nothing to do again.
  if (settling.has(mac) && !p.gate.isOpen(mac)) {
    await afterFlush?.();
    return { result: 'not-found', state: null };
  }
  settling.cancel(mac);
  const held = new HeldRuns(p.nft);
  const change = p.gate.closing(mac);
  if (change !== null) await held.for('gate')(['-f', '-'], change.script);
  await Promise.all([p.ipv6Gate.withdraw(mac, held.for('ipv6')), p.ipv6Gate.released(mac, held.for('ipv6'))]);
  // Refused (ERR_GATE_NFT): the device passes as before, metered; tried again.
  await transact(p, { what: 'close', mac, held, gateFirst: true });
  change?.made();
  // Its flows end with its gate, on a shell of their own.
  await p.flushFlows(mac);
  await afterFlush?.();
  if (p.counters.has(mac) || p.kernelQuota.has(mac)) settling.after(mac, () => settle(p, mac));
  await p.shaper?.remove(mac);
  // Not listed any more: the gate's own word, as openNDS's Yes on its socket.
  return { result: change === null ? 'not-found' : 'closed', state: null };
}

/** A closed device's flows are gone from any flowtable: its quota and counters go, one transaction. */
async function settle(p: OwnValveParts, mac: string): Promise<void> {
  const held = new HeldRuns(p.nft);
  await Promise.all([p.kernelQuota.remove(mac, held.for('quota')), p.counters.uncount(mac, held.for('counters'))]);
  await transact(p, { what: 'settle', mac, held, gateFirst: false });
}

/**
 * One transaction of what the modules kept and the gate's own lines (`gate`, first in a close). Refused: each part
 * alone (a module whose part nft refuses alone rebuilds its table from what it knows); ERR_GATE_NFT when the gate's
 * own part was refused too (nothing of the gate changed).
 */
async function transact(
  p: OwnValveParts,
  t: { what: string; mac: string; held: HeldRuns; gateFirst: boolean },
): Promise<void> {
  const { what, mac, held, gateFirst } = t;
  const parts = held.parts();
  if (parts.length === 0) return;
  const gate = parts.filter((x) => x.name === 'gate');
  const ordered = gateFirst ? [...gate, ...parts.filter((x) => x.name !== 'gate')] : parts;
  try {
    await p.nft(['-f', '-'], ordered.map((x) => x.script).join(''));
    return;
  } catch (err) {
    p.log.warn(`own gate: the ${what} was refused as one; each part alone`, {
      mac,
      reason: toSluiceError(err).message,
    });
  }
  const rebuild: Record<string, (reason: string) => Promise<void>> = {
    quota: (reason) => p.kernelQuota.rebuild(reason),
    counters: (reason) => p.counters.rebuild(reason),
    ipv6: (reason) => p.ipv6Gate.rebuild(reason),
  };
  let refused: unknown = null;
  for (const part of ordered) {
    try {
      await p.nft(['-f', '-'], part.script);
    } catch (err) {
      if (part.name === 'gate') refused = err;
      else await rebuild[part.name]?.(`a refused ${what}`);
    }
  }
  if (refused === null) return;
  throw new SluiceError('ERR_GATE_NFT', `the ${what} of ${mac} was refused by nft: ${toSluiceError(refused).message}`, {
    cause: refused,
    details: { mac },
  });
}
