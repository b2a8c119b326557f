/** Public surface of src/x402/. */
export * from './facilitator.ts';
export * from './http-json.ts';
export * from './networks.ts';
export * from './payload.ts';
export * from './store.ts';
export * from './verify.ts';
