/** A Log (src/log.ts) that hands each line to the test as it is written, for assertions on messages and fields. */
import type { Log, LogFields, LogLevel } from '../../src/log.ts';

export function recordingLog(onLine: (level: LogLevel, message: string, fields: LogFields | undefined) => void): Log {
  return {
    debug: (m, f) => onLine('debug', m, f),
    info: (m, f) => onLine('info', m, f),
    warn: (m, f) => onLine('warn', m, f),
    error: (m, f) => onLine('error', m, f),
  };
}
