/** Public surface of src/storage/. */
export * from './atomic-write.ts';
export * from './crc32.ts';
export * from './line-log.ts';
