export { startCollector, type Collector, type CollectorOptions, type CollectorStats } from './collector.ts';
