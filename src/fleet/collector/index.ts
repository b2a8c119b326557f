export { startCollector, type Collector, type CollectorOptions, type CollectorStats } from './collector.ts';
export { parseMessage, isReject, type Inbound } from './parse.ts';
