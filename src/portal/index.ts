// Public surface of the captive portal: a leaf library (it imports only src/errors.ts, src/mac.ts, src/log.ts and
// src/time.ts).
// Formats (openNDS, nodogsplash): formats.ts, read by the main thread's parser and the usage worker's scanner.
export {
  GATE_OPEN_STATES,
  type GateBrake,
  type GateCounter,
  type GateShaper,
  type PortalClient,
  type PortalFlavour,
  type PortalSnapshot,
  type SafetyNet,
} from './types.ts';
export {
  COUNTER_UNIT,
  FORMATS,
  STATE_CODES,
  STATE_NAMES,
  stateCodeOf,
  type PortalFormat,
  type PortalStateName,
} from './formats.ts';
export { normalizeMac, tryNormalizeMac } from '../mac.ts';
export { macFromParts, macToParts } from './mac-parts.ts';
export { detectFlavour, parseClient, parseSnapshot } from './parse.ts';
export { PortalParseError } from './parse-error.ts';
export type { SnapshotProblem } from './client-list.ts';
export {
  scanSnapshot,
  SnapshotScan,
  type AddressSink,
  type ClientSink,
  type ScanOutcome,
  type SinkFor,
} from './scan.ts';
export { parseSnapshotFallback, type FallbackOutcome } from './scan-fallback.ts';
export { openNdsAuthArgs, UNLIMITED_QUOTA_KIB, UNLIMITED_SESSION_MINUTES } from './auth-args.ts';
// Transports: the command (ndsctl) and the portal's control socket, for the runner's calls and the worker's snapshot.
export { NDSCTL_EXIT, type SpawnFn } from './command.ts';
export { NdsctlRunner } from './runner.ts';
export type { NdsctlExec, NdsctlPriority, NdsctlResult, NdsctlRunnerOptions } from './runner.ts';
export { portalSocketIdentity, portalSocketResolver, STOCK_NDSCTL } from './portal-socket.ts';
export { DEFAULT_SOCKET_PATHS, findPortalSocket, socketOutcome, socketRequest } from './socket-transport.ts';
export {
  fetchSnapshot,
  SnapshotBuffer,
  type FetchOptions,
  type FetchOutcome,
  type FetchProblem,
  type SnapshotSource,
} from './snapshot-fetch.ts';
export { declaredClientCount, DEFAULT_OUTPUT_CAP, outputBound } from './output-bound.ts';
export { Valve } from './valve.ts';
export {
  neighbourMacReader,
  neighbourReader,
  neighbourTable,
  sharedNeighbourTable,
  type NeighbourRead,
} from './neighbours.ts';
export { binauthTokenReader } from './binauth-tokens.ts';
export { BinauthWatch } from './binauth-watch.ts';
export type { CloseResult, OpenResult, ValveOptions } from './valve.ts';
export { KernelQuota } from './kernel-quota.ts';
export { KERNEL_QUOTA_TABLE } from './kernel-quota-nft.ts';
export { TableWatch } from './table-watch.ts';
export { Ipv6Gate } from './ipv6-gate.ts';
export { DEFAULT_HOLD_SECONDS, GATE_TABLE } from './ipv6-gate-nft.ts';
export { flowFlusher } from './flow-flush.ts';
export type { BrakedSession } from './kernel-quota-nft.ts';
export { nftRunner, type NftRun } from './nft-run.ts';
export { HeldRuns, NftBatcher } from './nft-batch.ts';
export { sharedCommandShell } from './command-shell.ts';
export {
  COUNTER_TABLE,
  counterTableLines,
  counterTableScript,
  countLines,
  uncountLines,
  parseCounterTable,
  upCounterName,
  downCounterName,
} from './kernel-counters.ts';
export { KernelCounters, type KernelCountersOptions } from './kernel-counting.ts';
export { scanCounterDump } from './nft-scan.ts';
export type { CounterDump, KernelReading } from './counter-dump.ts';
// Speed tiers: rates as text, and the kernel's per-client limits (HTB classes + sluice's nft table).
export {
  formatRate,
  hasRates,
  MAX_RATE_BPS,
  MIN_RATE_BPS,
  NO_RATES,
  parseRate,
  RATE_REASON,
  type ClientRates,
  type RateParse,
} from './rates.ts';
export { Shaper, SHAPER_TABLE, type ShapedClient, type ShaperOptions } from './shaper.ts';
export { systemLookup, WalledGarden } from './walled-garden.ts';
export { GardenDnsmasq } from './garden-dnsmasq.ts';
// sluice's own gate (main.portal 'sluice'): its nft table, its state, the ndsctl protocol it answers. Only its types
// here: gate/own-gate.ts and gate/own-valve.ts import its code from its files, read under that portal only (through
// this index, esbuild's splitting would put them where every importer of portal/ reaches them, loaded at every start).
export type { OwnGate } from './own-gate.ts';
export type { OwnGateRuleset } from './own-gate-nft.ts';
// Where the hotspot runs: the device(s) to meter on, and the guard that keeps the kernel's metering there.
export {
  decideHotspot,
  listedClientDevices,
  problemOf,
  type DeviceFacts,
  type HotspotDecision,
} from './hotspot-devices.ts';
export { portalGatewayInterfaces, sysfsDeviceFacts } from './hotspot-probe.ts';
export { MeteringGuard } from './metering-guard.ts';
