export { startCollector, type Collector, type CollectorOptions, type CollectorStats } from './collector.ts';
export { parseMessage, isReject, type Inbound } from './parse.ts';
export {
  DEFAULT_RETENTION_DAYS,
  pruneRouter,
  retentionPass,
  type PassResult,
  type RetentionOptions,
} from './retention.ts';
export { compactRouter } from './spans.ts';
