// tier: fast
/**
 * The outbox's segment file (upstream/outbox.ts: the records on their way to an upstream) against the shared damage
 * suite, under the `outbox` verdict: a damaged record is read past (the rest delivered), an emptied or deleted segment
 * is read as new, a directory in its place is refused. Reports, not money: delivery is at least once.
 */
import { Outbox } from '../../src/upstream/outbox.ts';
import { segmentName } from '../../src/upstream/outbox-segments.ts';
import { durableFileSuite } from './durable-file-suite.ts';

durableFileSuite<Outbox>('outbox segment (reports on their way upstream)', {
  kind: 'outbox',
  file: segmentName(1),
  code: 'ERR_OUTBOX_OPEN',
  open: (dir) => Outbox.open({ dir, maxBytes: 1 << 20, consumers: ['up'] }),
  put: async (box, n) => {
    await box.append(Buffer.from(`report ${n}`), { durable: true });
  },
  holds: (box) => box.pending('up').map((r) => `${r.seq}:${Buffer.from(r.payload).toString()}`),
  close: (box) => box.close(),
  stride: 3,
});
