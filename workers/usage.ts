// Piscina worker of the usage engine (src/meter): fetches one `ndsctl json` snapshot, scans it, accounts counter
// epochs in the shared table and returns only what changed. Bundled to dist/usage-worker.mjs.
// The accountant is only a cache of the shared table (its MAC index): any thread, including a replacement for one that
// crashed, rebuilds it from the table, so no state is lost with a thread. The kept roster is one too: a thread that
// does not hold the roster a task names says so, and the main thread sends it (src/meter/kernel-task.ts).
import { SnapshotBuffer } from '../src/portal/index.ts';
import { EpochAccountant } from '../src/meter/epochs.ts';
import { runUsageTask, type UsageResult, type UsageTask } from '../src/meter/task.ts';
import { KeptRoster, runKernelTask, type KernelUsageResult, type KernelUsageTask } from '../src/meter/kernel-task.ts';

const accountant = new EpochAccountant();
let buffer = new SnapshotBuffer();
/** The roster of the last listing this thread scanned or was sent, by key: the main thread sends the key alone. */
const kept = new KeptRoster();

export default function usage(task: UsageTask): Promise<UsageResult> {
  return runUsageTask(task, accountant, buffer);
}

/** A tick from the kernel's counters (Piscina's `name: 'kernel'`): the same accountant, so the same table cache. */
export function kernel(task: KernelUsageTask): Promise<KernelUsageResult> {
  return runKernelTask(task, accountant, buffer, kept);
}

/**
 * Drops the kept snapshot buffer for a fresh small one. The Meter's adaptive runner imports this module on the main
 * thread for an idle router's ticks (src/meter/pool.ts) and calls this after a snapshot too big to keep reading there:
 * the next ones go to the pool, and the main thread should not hold a buffer of that size for nothing.
 */
export function releaseBuffer(): void {
  buffer = new SnapshotBuffer();
}
