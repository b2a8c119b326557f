/**
 * Child process for the kill -9 tests: opens the outbox in argv[2], appends argv[3] records (every 5th durable),
 * acknowledges the first argv[4] for consumer `a`, prints the sequence numbers, then SIGKILLs itself: no close,
 * no flush, no cursor write. argv[5] `ram`: the store keeps its droppable records in RAM (droppableInRam).
 */
import { Outbox } from '../../src/upstream/outbox.ts';

const [dir, count, acked, mode] = process.argv.slice(2) as [string, string, string, string | undefined];
const box = await Outbox.open({
  dir,
  maxBytes: 1 << 20,
  consumers: ['a', 'b'],
  syncIntervalMs: 60_000,
  cursorIntervalMs: 60_000,
  droppableInRam: mode === 'ram',
});
const seqs: number[] = [];
for (let i = 0; i < Number(count); i++) {
  const durable = i % 5 === 0;
  // Droppable appends are not awaited: the kill comes before any fsync of theirs.
  const p = box.append((seq) => Buffer.from(`record ${i} seq ${seq}`), { durable, type: durable ? 1 : 2 });
  seqs.push(durable ? await p : box.nextSeq - 1);
}
for (const r of box.pending('a', { limit: Number(acked) })) box.ack('a', r.seq);
process.stdout.write(`${JSON.stringify(seqs)}\n`);
process.kill(process.pid, 'SIGKILL');
