// tier: fast
/**
 * The marks logs (storage/line-log.ts: a sink's end marks, RADIUS accounting's `radius/acked`) against the shared
 * damage suite, under the `marks-log` verdict: a damaged record is read past, an emptied or deleted log is new (a lost
 * mark costs a report sent twice, never money), a directory in its place is refused (ERR_STATE_DIR, counted).
 */
import { join } from 'node:path';
import { EndMarks } from '../../src/upstream/end-marks.ts';
import { AckLog } from '../../src/upstream/radius/ack-log.ts';
import { durableFileSuite } from './durable-file-suite.ts';

const IDS = ['s1', 's2', 's3'];

durableFileSuite<EndMarks>("end marks (a sink's ended sessions)", {
  kind: 'marks-log',
  file: 'ended',
  code: 'ERR_STATE_DIR',
  open: async (dir) => EndMarks.open(join(dir, 'ended'), [], () => true),
  put: async (marks, n) => marks.mark(`s${n}`),
  holds: (marks) => IDS.filter((id) => marks.has(id)),
  close: async (marks) => marks.abandon(),
});

durableFileSuite<{ acks: AckLog; seqs: number[] }>('radius/acked (acknowledged Accounting records)', {
  kind: 'marks-log',
  file: 'acked',
  code: 'ERR_STATE_DIR',
  open: async (dir) => AckLog.open(join(dir, 'acked')),
  put: async ({ acks }, n) => acks.record(n),
  holds: ({ acks }) => acks.size,
  close: async ({ acks }) => acks.close(),
});
