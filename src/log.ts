/**
 * One line per event on stdout (info/debug) or stderr (warn/error); procd forwards both to logread, which adds its own
 * timestamp, so lines carry none unless asked. Fields are `key=value`, values quoted when they contain spaces.
 * Secrets never reach here: callers log ids, MACs and codes, not configs.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, string | number | bigint | boolean | null | undefined>;

export interface Logger {
  level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

function format(fields: LogFields | undefined): string {
  if (!fields) return '';
  let out = '';
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = String(value);
    out += ` ${key}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`;
  }
  return out;
}

/**
 * What a part that logs is given: a Logger without the level knob (the daemon's, a test's recorder). Fields are flat
 * values: a part with a list to log joins or JSON-encodes it itself, so no adapter sits between it and the line.
 */
export type Log = Pick<Logger, LogLevel>;

export interface LoggerOptions {
  level?: LogLevel;
  timestamps?: boolean;
  write?: (level: LogLevel, line: string) => void;
}

/**
 * A log stream whose reader went away (the parent that held the pipe died, `sluice daemon | head`) fails its writes
 * with EPIPE as an 'error' event. Unheard, that event is an uncaught exception, which the daemon logs to the same
 * dead stream: a loop at 100% CPU, seen with a test's orphaned daemon. Heard here: that stream is dropped and the
 * daemon goes on without it.
 */
const deadStreams = new WeakSet<NodeJS.WritableStream>();
const heardStreams = new WeakSet<NodeJS.WritableStream>();

function writeTo(stream: NodeJS.WritableStream, line: string): void {
  if (deadStreams.has(stream)) return;
  if (!heardStreams.has(stream)) {
    heardStreams.add(stream);
    stream.on('error', () => {
      deadStreams.add(stream);
    });
  }
  stream.write(line);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const write =
    options.write ??
    ((level: LogLevel, line: string) =>
      writeTo(RANK[level] >= RANK.warn ? process.stderr : process.stdout, line + '\n'));
  const logger: Logger = {
    level: options.level ?? 'info',
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
  function emit(level: LogLevel, msg: string, fields?: LogFields): void {
    if (RANK[level] < RANK[logger.level]) return;
    const stamp = options.timestamps ? `${new Date().toISOString()} ` : '';
    write(level, `${stamp}${level}: ${msg}${format(fields)}`);
  }
  return logger;
}

export const silentLogger: Logger = { level: 'error', debug() {}, info() {}, warn() {}, error() {} };
