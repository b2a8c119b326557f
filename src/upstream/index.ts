/** Public surface of the upstream area: the sink interface, the host the daemon wires, the shared outbox, the sinks. */
import type { Config } from '../config/types.ts';
import type { Logger } from '../log.ts';
import type { UpstreamSink } from './sink.ts';

export type { SessionFigures, SinkEvent, SinkStats, UpstreamSink } from './sink.ts';
export { SinkHost, type SessionSource, type SinkHostOptions } from './host.ts';
export { Outbox, type AppendOptions, type OutboxOptions, type OutboxRecord, type OutboxStats } from './outbox.ts';

export interface SinkDeps {
  log: Logger;
}

/** The sinks the config enables, not started yet (the daemon adds them to its SinkHost). One line per upstream. */
export function createSinks(config: Config, deps: SinkDeps): UpstreamSink[] {
  const sinks: UpstreamSink[] = [];
  void config;
  void deps;
  return sinks;
}
