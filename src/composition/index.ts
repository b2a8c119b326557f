export type { Parts } from './parts.ts';
export { openSessions } from './sessions-open.ts';
export { configReloader } from './reloader.ts';
export { meterFor } from './meter.ts';
export { stopParts } from './shutdown.ts';
export { daemonStats, upstreamStatus } from './status.ts';
export { openWalledGarden } from './walled-garden.ts';
export { lanDoorsFor } from './lan.ts';
export { addSinks } from './venue.ts';
