/** Public surface of src/escrow/. */
export * from './client.ts';
export * from './ledger.ts';
export * from './receipt.ts';
