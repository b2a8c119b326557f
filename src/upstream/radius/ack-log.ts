/**
 * The accounting sink's acknowledgements, logged the moment the server answers (one LineLog write each, so kill -9
 * keeps it), because the outbox writes its cursor only now and then: after a restart nothing the server already has
 * is sent again. The log stays small by keeping only what the outbox's cursor on flash does not cover yet.
 */
import { LineLog } from '../../storage/index.ts';

const ACK_LINE = /^\d{1,15}$/;

export class AckLog {
  private constructor(
    private readonly log: LineLog,
    private readonly acked: Set<number>,
  ) {}

  /** Opens (creating) the log; `seqs` are the acknowledgements it holds, for the outbox to take again. */
  static open(path: string): { acks: AckLog; seqs: number[] } {
    const { log, lines } = LineLog.open(path, ACK_LINE);
    const seqs = lines.map(Number);
    return { acks: new AckLog(log, new Set(seqs)), seqs };
  }

  record(seq: number): void {
    this.log.append(String(seq));
    this.acked.add(seq);
  }

  /** Lines in the file. */
  get size(): number {
    return this.log.size;
  }

  /** Keeps only the sequence numbers above `floor` (a cursor already on flash). Throws when the rewrite fails. */
  keepAbove(floor: number): void {
    for (const s of this.acked) if (s <= floor) this.acked.delete(s);
    this.log.rewrite([...this.acked].map(String));
  }

  close(): void {
    this.log.close();
  }
}
