/** Public surface of src/storage/: atomic replace, CRC-32, the append-only record format and the line log on it. */
export * from './atomic-write.ts';
export * from './crc32.ts';
export * from './record-log.ts';
export * from './line-log.ts';
