/**
 * Public surface of src/storage/: atomic replace, a bounded mkdir -p, CRC-32, and the append-only logs: the length-framed record format
 * (the outbox, the line log on it), the CRC-framed JSON-line log (the session journal and snapshot), and the file of used
 * nonces whose damage refuses instead of reading as empty (nonce-file.ts).
 */
export * from './atomic-write.ts';
export * from './ensure-dir.ts';
export * from './crc32.ts';
export * from './record-log.ts';
export * from './line-log.ts';
export * from './json-log.ts';
export * from './nonce-file.ts';
