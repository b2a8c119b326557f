export type { Parts } from './parts.ts';
export { openDoors, type Doors } from './doors.ts';
export { stopParts } from './shutdown.ts';
