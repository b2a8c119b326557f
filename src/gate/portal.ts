/**
 * The portal the gate drives, built from main's options: the valve (the portal's control socket when there is one,
 * else the ndsctl command) and, with main.kernel_quota, the kernel byte quota under each data session's gate, which
 * the valve's brake sets before an auth and removes after a deauth.
 */
import type { MainConfig } from '../config/index.ts';
import { lazyPart } from '../lazy.ts';
import type { Log } from '../log.ts';
import {
  binauthTokenReader,
  BinauthWatch,
  COUNTER_TABLE,
  flowFlusher,
  KERNEL_QUOTA_TABLE,
  KernelCounters,
  KernelQuota,
  MeteringGuard,
  neighbourReader,
  neighbourTable,
  nftRunner,
  sharedNeighbourTable,
  type NeighbourRead,
  NftBatcher,
  portalSocketIdentity,
  portalSocketResolver,
  DEFAULT_HOLD_SECONDS,
  GATE_TABLE,
  Ipv6Gate,
  Shaper,
  TableWatch,
  Valve,
  type DeviceFacts,
  type HotspotDecision,
} from '../portal/index.ts';
import { isLive, type SessionReadView } from '../sessions/index.ts';
import { leaseTimeoutMs } from '../upstream/index.ts';
import type { CounterMark } from '../meter/index.ts';
import { brakeAtOpening, brakedSessionOf } from './shared-brake.ts';
import type { GatekeeperOptions } from './options.ts';
import { Gatekeeper } from './gatekeeper.ts';
import type { OwnGateConfig, OwnGatePart } from './own-gate.ts';
import { checkListedClients, findHotspot } from './hotspot.ts';

export interface Portal {
  valve: Valve;
  kernelQuota: KernelQuota | null;
  /** Speed tiers, when a plan sells one. */
  shaper: Shaper | null;
  /** The control socket found at start (the meter's worker reads snapshots through it), if any. */
  socket: string | undefined;
  /** The control socket's device:inode now: a new one is a restarted portal (portal-socket.ts). */
  identity: () => string | undefined;
  /**
   * With main.kernel_quota, the kernel's per-client counters the meter reads usage from (portal/kernel-counting.ts):
   * made fresh before every auth, removed after every deauth; startCounting() turns them on.
   */
  counters: KernelCounters | null;
  /**
   * With main.kernel_quota, the watch that makes the counters' and the quota's tables again the moment something else
   * deletes them (`nft flush ruleset`): started by the daemon, stopped at its stop.
   */
  tableWatch: TableWatch | null;
  /** What the Gatekeeper drives: the valve, the kernel's quota and shaper, and how a close is confirmed. */
  gateParts: Pick<GatekeeperOptions, 'valve' | 'kernelQuota' | 'shaper' | 'confirmByLook'>;
  /**
   * With main.kernel_quota, the IPv6 gate (portal/ipv6-gate.ts): a client's IPv6 passes only while its gate is open,
   * which neither portal does. Started by the daemon with the live sessions' clients.
   */
  ipv6Gate: Ipv6Gate | null;
  /** openNDS: its own deauths as its BinAuth reports them (portal/binauth-watch.ts), watched from the start. */
  binauthDeauths: BinauthWatch | null;
  /** `main.portal 'sluice'`: sluice's own gate, which the valve drives over its socket (gate/own-gate.ts). */
  ownGate: OwnGatePart | null;
  /** At the daemon's stop: the BinAuth watch and the own gate's socket closed (its table stays). */
  closeWatches(): Promise<void>;
  /** The device(s) the hotspot runs on, and whether the kernel's metering there counts its customers. */
  metering: MeteringGuard;
}

type Rebuilt = { enabled: boolean; rebuild: (reason: string) => Promise<void> };

/**
 * The watch that makes sluice's tables again the moment something else deletes them (`nft flush ruleset`): each
 * table's part rebuilds its own.
 */
function watchTables(
  main: MainConfig,
  log: Log,
  parts: { counters: Rebuilt; kernelQuota: Rebuilt; ipv6Gate: Rebuilt; ownGate: OwnGatePart | null },
): TableWatch {
  const { counters, kernelQuota, ipv6Gate, ownGate } = parts;
  const partOf = (table: string): Rebuilt =>
    table.endsWith(COUNTER_TABLE)
      ? counters
      : table.endsWith(GATE_TABLE)
        ? ipv6Gate
        : ownGate !== null && table.endsWith(ownGate.table)
          ? ownGate.gate
          : kernelQuota;
  return new TableWatch({
    command: main.nft,
    tables: [
      `netdev ${COUNTER_TABLE}`,
      `netdev ${KERNEL_QUOTA_TABLE}`,
      `netdev ${GATE_TABLE}`,
      ...(ownGate ? [`inet ${ownGate.table}`] : []),
    ],
    run: nftRunner(main.nft, main.ndsctlTimeoutMs),
    // A table sluice turned off and deleted itself (nft cannot read it) is not made again.
    kept: (table) => partOf(table).enabled,
    // The own gate's script only adds its table: one deleted and added again was made by fw4's include, its set empty.
    remadeByOthers: ownGate ? [`inet ${ownGate.table}`] : [],
    log,
    onGone: (table) => void partOf(table).rebuild(`table ${table} deleted`),
  });
}

/** The kernel's parts under the gates (main.kernel_quota), all hooked on every one of the hotspot's `devices`. */
function kernelParts(
  main: MainConfig,
  o: { nft: ReturnType<typeof nftRunner>; devices: readonly string[]; sessions: SessionReadView; log: Log },
): { kernelQuota: KernelQuota; ipv6Gate: Ipv6Gate; counters: KernelCounters } | null {
  if (!main.kernelQuota) return null;
  const { nft, devices, sessions, log } = o;
  return {
    kernelQuota: new KernelQuota({ run: nft, devices, log, session: brakedSessionOf(sessions) }),
    ipv6Gate: new Ipv6Gate({
      run: nft,
      devices,
      log,
      // A close is tried again each tick once the last try ended, which can take a portal call's whole timeout.
      holdSeconds: Math.max(DEFAULT_HOLD_SECONDS, Math.ceil((4 * main.ndsctlTimeoutMs) / 1000)),
      // A venue router's devices pass only while their lease is renewed (upstream/venue-lease.ts).
      ...(main.venue !== '' && { leaseTimeoutMs: leaseTimeoutMs(main.venueLeaseTtlMs) }),
    }),
    counters: new KernelCounters({ command: main.nft, devices, timeoutMs: main.ndsctlTimeoutMs, log, run: nft }),
  };
}

/**
 * The guard over the hotspot's device(s): a client found elsewhere turns the kernel's counters and quota off, and the
 * portal's counters meter and its gates close by the meter's readings from the next tick. sluice's own gate has no
 * counters but the kernel's: there the problem is reported and nothing is turned off.
 */
function meteringGuard(
  main: MainConfig,
  where: { hotspot: HotspotDecision; facts: DeviceFacts; neighbours: NeighbourRead },
  kernel: ReturnType<typeof kernelParts>,
  log: Log,
): MeteringGuard {
  return new MeteringGuard({
    decision: where.hotspot,
    facts: where.facts,
    neighbours: where.neighbours,
    kernelCounting: () => kernel?.counters.enabled === true,
    fallBack: async (problem) => {
      if (main.portal === 'sluice') return;
      await Promise.all([kernel?.counters.off(problem), kernel?.kernelQuota.off(problem)]);
    },
    log,
  });
}

export interface PortalWhere {
  shaping: boolean;
  hotspot: HotspotDecision;
  facts: DeviceFacts;
  /** The neighbour table sluice's own gate binds devices by (tests; default /proc/net/arp). */
  neighbours?: () => Promise<string | null>;
  /** `conntrack` as argv, for a close's flow deletes (tests; default `conntrack`). */
  conntrack?: readonly string[];
}

/** The rate shaper, when a plan sells a speed tier. */
function shaperOf(main: MainConfig, devices: readonly string[], log: Log): Shaper {
  return new Shaper({
    devices,
    log,
    tc: nftRunner(main.tc, main.ndsctlTimeoutMs, { errCode: 'ERR_SHAPER', name: 'tc' }),
    nft: nftRunner(main.nft, main.ndsctlTimeoutMs, { errCode: 'ERR_SHAPER', name: 'nft' }),
  });
}

/**
 * sluice's own gate and the valve over it (own-gate.ts, own-valve.ts, and the nft table, state and socket under them in
 * portal/), read only under `main.portal 'sluice'` (restart-only): a router whose portal is openNDS or nodogsplash
 * never loads their chunks (docs/performance.md, "Idle memory").
 */
const ownGateCode = lazyPart("sluice's own gate", async () => {
  const [{ ownGatePart }, { ownGateValve }] = await Promise.all([import('./own-gate.ts'), import('./own-valve.ts')]);
  return { ownGatePart, ownGateValve };
});

/**
 * `shaping`: a plan sells a speed tier (rate_down/rate_up): the valve sets each such session's rates
 * (portal/shaper.ts). `hotspot`: the device(s) it runs on (gate/hotspot.ts): every part hooks, shapes and gates on
 * all of them, so a client on any one is counted, braked and gated alike.
 */
export async function openPortal(
  config: OwnGateConfig,
  sessions: SessionReadView,
  log: Log,
  where: PortalWhere,
): Promise<Portal> {
  const { shaping, hotspot, neighbours = neighbourTable(), conntrack } = where;
  const { devices } = hotspot;
  const { main } = config;
  // One nft run for what a gate event changes in the quota's, the counters', the IPv6 gate's (and sluice's own
  // gate's) tables together.
  const nft = new NftBatcher(nftRunner(main.nft, main.ndsctlTimeoutMs)).run;
  const own = main.portal === 'sluice' ? await ownGateCode() : null;
  const ownGate = own?.ownGatePart(config, devices, nft, { log, neighbours }) ?? null;
  // sluice's own gate answers on its socket in openNDS's form (portal/own-gate-server.ts).
  const socketPath = ownGate !== null ? () => ownGate.socket : portalSocketResolver(main);
  const socket = socketPath();
  log.info('portal control', { via: socket ?? 'command', ndsctl_socket: main.ndsctlSocket, portal: main.portal });
  const flushFlows = flowFlusher({ log, neighbours, ...(conntrack === undefined ? {} : { command: conntrack }) });
  const kernel = kernelParts(main, { nft, devices, sessions, log });
  const kernelQuota = kernel?.kernelQuota ?? null;
  const ipv6Gate = kernel?.ipv6Gate ?? null;
  const counters = kernel?.counters ?? null;
  // An opening's reads of the table (its addresses, the metering guard's check) shared with those of the same moment.
  const opening = sharedNeighbourTable(neighbours);
  const metering = meteringGuard(main, { ...where, neighbours: opening }, kernel, log);
  const shaper = shaping ? shaperOf(main, devices, log) : null;
  const valve = new Valve({
    command: main.ndsctl,
    socketPath,
    timeoutMs: main.ndsctlTimeoutMs,
    maxOutputBytes: main.portalOutputMax,
    flavour: listingFlavour(main),
    log,
    ...(kernelQuota && {
      brake: {
        beforeAuth: async (mac, _ip, limit) => {
          await metering.admit(mac);
          await brakeAtOpening(kernelQuota, (m) => sessions.byMac(m), mac, limit);
        },
        afterDeauth: async (mac) => {
          await kernelQuota.remove(mac);
          // Its flows end with its gate: an offloaded one passes a closed gate, and openNDS deletes no entry.
          await flushFlows(mac);
        },
      },
    }),
    ...(shaper && { shaper }),
    ...(counters && {
      counter: {
        beforeAuth: async (mac) => {
          await metering.admit(mac);
          await counters.count(mac);
        },
        afterDeauth: (mac) => counters.uncount(mac),
        afterRefusal: (mac) => counters.uncount(mac),
      },
    }),
    ...(ipv6Gate && { ipv6: ipv6Gate }),
    // The address an auth needs, from the kernel instead of a portal lookup (Valve.open; portal/neighbours.ts).
    neighbour: neighbourReader(),
    // openNDS: the tokens the package's BinAuth keeps beside the control socket, for deauths by token.
    binauthTokens: binauthTokenReader(socketPath),
  });
  const tableWatch =
    kernelQuota && counters ? watchTables(main, log, { counters, kernelQuota, ipv6Gate: ipv6Gate!, ownGate }) : null;
  // No tick lists the portal while the kernel counts: a close is confirmed by a look at its one client.
  const confirmByLook = (): boolean => counters?.enabled === true;
  // sluice's own gate: each opening and close one nft transaction, none queued behind another (gate/own-valve.ts).
  const gateValve =
    own !== null && ownGate !== null && kernel !== null
      ? own.ownGateValve({
          ...{ ...kernel, valve, gate: ownGate.gate, nft, neighbours: opening, devices },
          ...{ metering, shaper, flushFlows, sessions, log },
        })
      : valve;
  const gateParts = { valve: gateValve, kernelQuota, shaper, confirmByLook };
  const binauthDeauths = main.portal === 'nodogsplash' || ownGate ? null : new BinauthWatch({ socketPath });
  binauthDeauths?.start();
  return {
    valve,
    kernelQuota,
    shaper,
    socket,
    binauthDeauths,
    identity: portalSocketIdentity(socketPath),
    counters,
    tableWatch,
    gateParts,
    ipv6Gate,
    ownGate,
    closeWatches: async () => {
      binauthDeauths?.close();
      await ownGate?.close();
    },
    metering,
  };
}

/** The form the portal lists its clients in: sluice's own gate answers in openNDS's. */
export function listingFlavour(main: Pick<MainConfig, 'portal'>): 'auto' | 'opennds' | 'nodogsplash' {
  return main.portal === 'sluice' ? 'opennds' : main.portal;
}

/**
 * Turns the kernel's counters on, keeping those of live sessions an earlier run left, and says which usage marks the
 * meter may start from: a mark is a counter epoch when the run that wrote it metered from the kernel (it left its
 * table), a portal token otherwise, and each means nothing to the other. So the journaled marks are kept only when this
 * run reads what the last one read: the counters on and the earlier table found, or both off (an nft without JSON
 * output: the portal's listing every tick, as before the counters; docs/configuration.md `kernel_quota`).
 */
export async function startCounting(
  { counters, ipv6Gate }: Pick<Portal, 'counters' | 'ipv6Gate'>,
  sessions: SessionReadView,
  marks: ReadonlyArray<readonly [string, CounterMark]>,
): Promise<{ counters: KernelCounters | undefined; marks: ReadonlyArray<readonly [string, CounterMark]> }> {
  // The IPv6 gate with it: a gate open before this start (a live session's) keeps its IPv6, every other client's stops.
  await ipv6Gate?.start(sessions.list({ state: 'ACTIVE' }).map((s) => s.mac));
  if (counters === null) return { counters: undefined, marks };
  const on = await counters.start((mac) => {
    const s = sessions.byMac(mac);
    return s !== null && isLive(s);
  });
  return { counters: on ? counters : undefined, marks: on === counters.foundEarlierTable ? marks : [] };
}

/**
 * The portal opened for the daemon (the shaper touches tc and nft only when a session with a speed tier opens: a
 * reload may add the first tier), its kernel counters started from the marks the journal
 * recovered, and the one owner of its gates over it.
 */
export async function openGates(
  config: OwnGateConfig,
  sessions: SessionReadView & GatekeeperOptions['sessions'],
  log: Log,
): Promise<{ portal: Portal; counting: Awaited<ReturnType<typeof startCounting>>; gates: Gatekeeper }> {
  const { main } = config;
  const { decision, probe } = findHotspot(main);
  const portal = await openPortal(config, sessions, log, { shaping: true, hotspot: decision, facts: probe.facts });
  // Before anything counts: a device that does not exist, or the portal's clients elsewhere, and the portal meters.
  const listed = main.kernelQuota && main.portal !== 'sluice';
  const problem = decision.problem ?? (listed ? await checkListedClients(portal.valve, decision, probe) : null);
  if (problem !== null) await portal.metering.fail(problem);
  else log.info('metering on', { devices: decision.devices.join(','), source: decision.source });
  // sluice's own gate: up, keeping the devices an earlier run left passing, before anything asks it.
  await portal.ownGate?.start();
  const live = sessions.list({ state: 'ACTIVE' });
  const counting = await startCounting(
    portal,
    sessions,
    live.flatMap((s) => (s.meterMark ? [[s.mac, s.meterMark] as const] : [])),
  );
  const gates = new Gatekeeper({ ...portal.gateParts, sessions, log, leaveForeign: main.leaveForeignClients });
  return { portal, counting, gates };
}
