/**
 * Public surface of the upstream area: the sink interface, the host the daemon wires, the outbox every sink queues
 * through (one implementation, a store per sink), the sinks.
 */
export type { SessionFigures, SinkEvent, SinkStats, UpstreamSink } from './sink.ts';
export { SinkHost, type SessionSource, type SinkHostOptions } from './host.ts';
export { Outbox, type AppendOptions, type OutboxOptions, type OutboxRecord, type OutboxStats } from './outbox.ts';

export { MqttSink, type MqttSinkDeps } from './mqtt/sink.ts';
export { RadiusUpstream, type RadiusDeps } from './radius/upstream.ts';
export { ubusChangeRates, type DasRates } from './radius/coa-rates.ts';
export type { StatusInfo } from './mqtt/messages.ts';
export { createSinks, type SinkDeps } from './create-sinks.ts';
