// A fast file's stand-in for test/thread-host.test.ts: prints, as one JSON line, the module state it found in a module
// of src/ (the damaged-file counts, src/storage/damage.ts), in a test helper (the open peer logs, log-tails.ts), in a
// package (a mark on dequal's export) and in a package the thread's files share (a mark on noble's bytesToHex,
// test/helpers/bundle.mjs SHARED), in a module it imports dynamically (a chunk loaded when reached, imported three
// times), and the worker thread it ran in and the file V8 names as the dynamically imported module's, then changes
// each: a file that ran after it in the same thread finds the shared package's mark, and would find the others changed
// if it had their instances too.
import { threadId } from 'node:worker_threads';
import { bytesToHex } from '@noble/hashes/utils.js';
import { dequal } from 'dequal';
import { countDamaged, damagedTables } from '../../src/storage/damage.ts';
import { logTails, tailOf } from './log-tails.ts';

type Marked = { sluiceProbeMarks?: number };
const own = dequal as Marked;
const shared = bytesToHex as Marked;
// Imported three times, twice at once: one instance, each import() resolving once it has run (bundle-linker.mjs).
const [lazy, again] = await Promise.all([import('./thread-probe-lazy.ts'), import('./thread-probe-lazy.ts')]);
const third = await import('./thread-probe-lazy.ts');
lazy.imported();
again.imported();
const seen = {
  thread: threadId,
  damaged: damagedTables(),
  tails: logTails(),
  packageMarks: own.sluiceProbeMarks ?? 0,
  sharedMarks: shared.sluiceProbeMarks ?? 0,
  lazyImports: third.imported(),
  lazyFrom: third.ranFrom(),
};
countDamaged('/probe/state.json');
tailOf('probe', () => 'a line of the probe');
own.sluiceProbeMarks = seen.packageMarks + 1;
shared.sluiceProbeMarks = seen.sharedMarks + 1;
console.log(JSON.stringify(seen));
