// A fast file's stand-in for test/thread-host.test.ts: prints, as one JSON line, the module state it found in a module
// of src/ (the damaged-file counts, src/storage/damage.ts) and in a test helper (the open peer logs, log-tails.ts),
// and the worker thread it ran in, then changes both: a file that ran after it in the same thread with the same module
// instances would find them changed.
import { threadId } from 'node:worker_threads';
import { countDamaged, damagedTables } from '../../src/storage/damage.ts';
import { logTails, tailOf } from './log-tails.ts';

const seen = { thread: threadId, damaged: damagedTables(), tails: logTails() };
countDamaged('/probe/state.json');
tailOf('probe', () => 'a line of the probe');
console.log(JSON.stringify(seen));
