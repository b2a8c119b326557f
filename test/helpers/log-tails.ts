/**
 * The last lines of each log a test's peers write (the fleet's services, each daemon, the broker, PostgreSQL): a wait
 * that times out prints them, so a stall under load says where it stalled and since when.
 */

/** Lines kept per log: enough to show what a peer did in the seconds before a wait gave up. */
const KEPT = 60;

const sources = new Map<string, () => string>();

/** The last KEPT lines of `text`. */
export const lastLines = (text: string): string =>
  text
    .split('\n')
    .slice(-KEPT - 1)
    .join('\n')
    .trimEnd();

/** Prints `read()`'s last lines under `name` until the returned function is called (its peer stopped). */
export function tailOf(name: string, read: () => string): () => void {
  sources.set(name, read);
  return () => {
    if (sources.get(name) === read) sources.delete(name);
  };
}

/** A log heard line by line (a pipe's chunks, or a recorder's lines), each stamped with when the test heard it. */
export class LogTail {
  private readonly lines: string[] = [];
  private partial = '';
  readonly close: () => void;

  constructor(name: string) {
    this.close = tailOf(name, () => [...this.lines, this.partial].join('\n').trimEnd());
  }

  push(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    const stamp = new Date().toISOString().slice(11, 23);
    for (const line of parts) this.lines.push(`${stamp} ${line}`);
    if (this.lines.length > KEPT) this.lines.splice(0, this.lines.length - KEPT);
  }
}

/** Every open log's last lines, each under its name; '' when none is open. */
export function logTails(): string {
  let out = '';
  for (const [name, read] of sources) {
    let text: string;
    try {
      text = lastLines(read());
    } catch (err) {
      text = `(not read: ${(err as Error).message})`;
    }
    out += `\n--- last lines of ${name} ---\n${text || '(nothing logged)'}`;
  }
  return out;
}

/** uvu's report of a failing test appends these (test/helpers/uvu-mend.mjs). */
(globalThis as { __sluiceLogTails?: () => string }).__sluiceLogTails = logTails;
