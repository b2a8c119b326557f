/**
 * Public surface of src/storage/: atomic replace, a bounded mkdir -p, the one rule of every append (whole or not at
 * all: append.ts), the file calls a writer's steps are made with, on the thread pool or at once at the start
 * (file-calls.ts), and the append-only logs: the length-framed record format (the outbox, the line log on it, the
 * sealed log of the Cashu ledger and the voucher book: sealed-log.ts), the CRC-framed JSON-line log (the session
 * journal and snapshot), and the file of used nonces whose damage refuses instead of reading as empty (nonce-file.ts),
 * and the whole-file JSON table every small state file is kept in (json-table.ts);
 * the damage verdict of every kind of file (verdicts.ts), the one refusal every reader gives (damage.ts), and the seal
 * that tells a file cut, emptied, deleted or rolled back from a crash's leftovers (seal.ts).
 */
export { atomicWriteFs, fsyncDir, processAlive, writeFileAtomic, type WriteFileAtomicOptions } from './atomic-write.ts';
export * from './ensure-dir.ts';
export { AppendError, appendWhole, appendWholeSyncv, fdAppendTarget } from './append.ts';
export { poolCalls, syncCalls, writeAll, type FileCalls } from './file-calls.ts';
export { FRAME_BYTES, MAX_RECORD_PAYLOAD, scanRecords, sealRecord } from './record-log.ts';
export { LineLog } from './line-log.ts';
export { decodeJsonLine, encodeJsonLine, type JsonDecoded, type JsonLogRead, readJsonLog } from './json-log.ts';
export { openNonceFile, saveNonces, type NonceTable, type SeenNonces } from './nonce-file.ts';
export { JsonTable, type JsonTableFormat } from './json-table.ts';
export { countDamaged, damagedTables, fileDamage } from './damage.ts';
export { readKeyFile, sealKey, writeKeyFile } from './key-file.ts';
export { matchSeal, readSealSync, sealOf, sealPath, writeSeal, type SealState } from './seal.ts';
export { SealedLog, type SealedLogFormat } from './sealed-log.ts';
