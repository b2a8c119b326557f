export type { Parts } from './parts.ts';
export { openSessions } from './sessions-open.ts';
export { configReloader } from './reloader.ts';
export { stopParts } from './shutdown.ts';
