/**
 * Public surface of src/storage/: atomic replace, a bounded mkdir -p, and the append-only logs: the length-framed
 * record format (the outbox, the line log on it), the CRC-framed JSON-line log (the session journal and snapshot), and
 * the file of used nonces whose damage refuses instead of reading as empty (nonce-file.ts), and the whole-file JSON
 * table every small state file is kept in, with its one damage policy (json-table.ts).
 */
export { fsyncDir, writeFileAtomic, type WriteFileAtomicOptions } from './atomic-write.ts';
export * from './ensure-dir.ts';
export { FRAME_BYTES, MAX_RECORD_PAYLOAD, scanRecords, sealRecord } from './record-log.ts';
export { LineLog } from './line-log.ts';
export { decodeJsonLine, encodeJsonLine, type JsonDecoded, type JsonLogRead, readJsonLog } from './json-log.ts';
export { openNonceFile, saveNonces, type NonceTable, type SeenNonces } from './nonce-file.ts';
export { countDamaged, damagedTables, JsonTable, type JsonTableFormat } from './json-table.ts';
