/**
 * Public surface of the upstream area: the host the daemon wires, the sinks it creates (RADIUS, its CoA rates' port).
 * The sink interface and the outbox every sink queues through stay inside: nothing outside upstream/ names them.
 */
export { SinkHost } from './host.ts';
export { openRadiusUpstream } from './radius-open.ts';
export type { StatusInfo } from './mqtt/messages.ts';
export { createSinks, type SinkDeps } from './create-sinks.ts';
export { signCommand } from './mqtt/commands.ts';
export { VenueRoaming, arrivalOf } from './venue-roaming.ts';
