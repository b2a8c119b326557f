/**
 * The meter over the portal the gate drives: its snapshot source (the portal's control socket found at start, else the
 * ndsctl command, or the owner's), the config's timings and bounds, and the kernel counters startCounting() turned on.
 * The meter follows the gate's auths and holds, and the gate the meter's facts (Gatekeeper.follow): what they mean for
 * a gate is the gate's to decide. From then on the meter marks what the sessions journal (MarkingStore.markWith).
 */
import type { MainConfig } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { MarkingStore, SessionManager } from '../sessions/index.ts';
import { Meter, sessionManagerPort, type TaskSource } from '../meter/index.ts';
import { neighbourTable } from '../portal/index.ts';
import type { Gatekeeper } from './gatekeeper.ts';
import { listingFlavour, type Portal, type startCounting } from './portal.ts';

export interface MeterOverOptions {
  sessions: SessionManager;
  gates: Gatekeeper;
  /** The journal's store the meter's marks go into. */
  marking: MarkingStore;
  log: Log;
  meterSource?: TaskSource | undefined;
  meterWorker?: { path: string | URL; execArgv?: string[] } | undefined;
}

export function meterOver(
  main: MainConfig,
  { valve, kernelQuota, socket, identity, binauthDeauths }: Portal,
  counting: Awaited<ReturnType<typeof startCounting>>,
  deps: MeterOverOptions,
): Meter {
  const { sessions, gates } = deps;
  const meter = new Meter({
    // The worker appends `json` itself (portal/snapshot-fetch.ts): the argv is the bare command.
    source:
      deps.meterSource ??
      (socket !== undefined ? { kind: 'socket', path: socket } : { kind: 'command', argv: [...main.ndsctl] }),
    flavour: listingFlavour(main),
    pollIntervalMs: main.pollIntervalMs,
    minIntervalMs: main.minReadIntervalMs,
    fetchTimeoutMs: main.ndsctlTimeoutMs,
    maxSnapshotBytes: main.portalOutputMax,
    workers: main.workers,
    ...(deps.meterWorker && { workerPath: deps.meterWorker.path }),
    ...(deps.meterWorker?.execArgv && { workerExecArgv: deps.meterWorker.execArgv }),
    sessions: sessionManagerPort(sessions),
    portal: valve,
    readClient: (mac, onStart) => valve.client(mac, 'read', onStart),
    ...(kernelQuota && { kernelQuota }),
    initialMarks: counting.marks,
    ...(counting.counters && { kernelCounters: counting.counters }),
    portalIdentity: identity,
    neighbours: neighbourTable(),
    ...(binauthDeauths && { portalDeauths: binauthDeauths }),
    gate: gates,
    log: deps.log,
  });
  gates.follow(meter);
  // A quota table made again takes off what the counters counted past the meter's last billed reading.
  kernelQuota?.rebuildWith(() => meter.sinceBilled());
  deps.marking.markWith({
    marks: () => meter.marks(),
    macOf: (id) => sessions.get(id)?.mac,
    openingMark: (mac) => meter.openingMark(mac),
  });
  return meter;
}
