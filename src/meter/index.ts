// Public surface of the usage engine.
export { Meter, type MeterOptions, type TickReport } from './meter.ts';
export type { MeterStats } from './stats.ts';
export type {
  ExclusivePort,
  KernelQuotaPort,
  MeteredSession,
  ReadClient,
  SessionsPort,
  UsageReport,
  UsageTaskRunner,
} from './ports.ts';
export {
  createAdaptiveRunner,
  createInlineRunner,
  createPoolRunner,
  defaultWorkerPath,
  type AdaptiveOptions,
  type PoolOptions,
} from './pool.ts';
export type { SkipReason, TaskSource, UsageResult, UsageTask } from './task.ts';
export type { CounterMark } from './table.ts';
export { sessionManagerPort, type ManagedSessionsPort, type ManagerForMeter } from './sessions-port.ts';
