/** Public surface of src/gate/. */
export * from './gatekeeper.ts';
export * from './safety-net.ts';
