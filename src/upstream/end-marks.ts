/**
 * Which sessions a sink has already reported as ended (RADIUS Stop, MQTT `ended`), so none is reported twice; the MQTT
 * sink keeps its payment marks the same way (`<session id>/<digest>`, reports.ts paymentKey: the restart's payment
 * replay skips those).
 * The session journal writes a session's end a moment after the sinks queued their report of it; a crash in between
 * brings the session back at the restart, where recovery ends it again. A sink checks here first. Marks are appended
 * to a LineLog (one write(), survives kill -9) right after the report is queued; a crash between the two loses only
 * the mark, so the sink also passes the ids its own queue still holds when it opens. A mark is kept while the session
 * manager still knows the session (live or retained after its end): once it has let go of it, its end is long on
 * flash.
 */
import { LineLog } from '../storage/index.ts';

const SESSION_ID_LINE = /^[\x21-\x7e]{1,128}$/;

export class EndMarks {
  private readonly ids: Set<string>;
  private kept: number;

  private constructor(
    private readonly log: LineLog,
    ids: Iterable<string>,
    private readonly known: (id: string) => boolean,
  ) {
    this.ids = new Set(ids);
    this.kept = this.ids.size;
  }

  /**
   * `queued`: sessions whose end report the sink's queue holds now; `known`: whether the session manager has the
   * session.
   */
  static open(path: string, queued: Iterable<string>, known: (id: string) => boolean): EndMarks {
    const { log, lines } = LineLog.open(path, SESSION_ID_LINE);
    return new EndMarks(log, [...lines, ...queued], known);
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Call right after the end report is queued. */
  mark(id: string): void {
    this.ids.add(id);
    this.log.append(id);
    if (this.log.size > Math.max(1024, 2 * this.kept)) this.compact();
  }

  /** Rewrites the file with the marks of sessions still known. Never throws: a failed rewrite keeps the longer file. */
  compact(): void {
    for (const id of this.ids) if (!this.known(id)) this.ids.delete(id);
    try {
      this.log.rewrite([...this.ids]);
    } catch {
      // The full file stays: still correct.
    }
    this.kept = this.ids.size;
  }

  close(): void {
    this.compact();
    this.log.close();
  }

  /** Without compacting (a crash-like stop). */
  abandon(): void {
    this.log.close();
  }
}
