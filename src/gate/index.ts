/**
 * Public surface of src/gate/: the one owner of the portal's gates, the portal it drives, the safety net of an auth.
 */
export * from './gatekeeper.ts';
export { openGates } from './portal.ts';
export * from './safety-net.ts';
export type { GateCloseState, GateState } from './states.ts';
export { macResolver } from './mac-resolver.ts';
export { meterOver } from './meter-over.ts';
export { openWalledGarden, type GardenKeeper } from './walled-garden.ts';
