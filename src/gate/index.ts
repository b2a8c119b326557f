/** Public surface of src/gate/. */
export * from './gatekeeper.ts';
export * from './portal.ts';
export * from './safety-net.ts';
