export { GATE_OPEN_STATES, type PortalClient, type PortalFlavour, type PortalSnapshot, type SafetyNet } from './types.ts';
export { normalizeMac, tryNormalizeMac } from '../mac.ts';
export { detectFlavour, parseClient, parseSnapshot, PortalParseError } from './parse.ts';
export { openNdsAuthArgs, UNLIMITED_QUOTA_KIB, UNLIMITED_SESSION_MINUTES } from './auth-args.ts';
export { NdsctlRunner, NDSCTL_EXIT } from './runner.ts';
export type { NdsctlExec, NdsctlResult, NdsctlRunnerOptions, RunnerLog, RunnerTimers, SpawnFn } from './runner.ts';
export { Valve } from './valve.ts';
export type { CloseResult, OpenResult, ValveOptions } from './valve.ts';
