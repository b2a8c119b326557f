/** Public surface of src/radius/. */
export * from './client.ts';
export * from './dictionary.ts';
export * from './nas.ts';
export * from './packet.ts';
