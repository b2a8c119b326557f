/**
 * Public surface of src/gate/: the one owner of the portal's gates, the portal it drives, the safety net of an auth.
 */
export * from './gatekeeper.ts';
export * from './portal.ts';
export * from './safety-net.ts';
export type { GateCloseState, GateState } from './states.ts';
