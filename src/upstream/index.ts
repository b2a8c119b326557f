/**
 * Public surface of the upstream area: the host the daemon wires, the sinks it creates, RADIUS's sink (opened by the
 * radius plugin: payments/radius/) and the sink interface a plugin registers through. The outbox every sink queues
 * through stays inside.
 */
export { SinkHost } from './host.ts';
export { openRadiusUpstream } from './radius-open.ts';
export type { UpstreamSink } from './sink.ts';
export type { ShaperFigures } from './radius/coa-rates.ts';
export type { StatusInfo } from './mqtt/messages.ts';
export { signCommand } from './mqtt/command-mac.ts';
export { signedHeaders } from './hook/signature.ts';
export type { VenueRoaming } from './venue-roaming.ts';
export { declaredLeaseTtlS, leaseTimeoutMs } from './venue-lease-time.ts';
export type { TrialAsk } from './venue-trials.ts';
export { arrivalOf } from './venue-args.ts';
export { addSinks } from './venue-sinks.ts';
