export type { Parts } from './parts.ts';
export { configReloader } from './reloader.ts';
export { stopParts } from './shutdown.ts';
