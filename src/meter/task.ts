/**
 * One usage tick as the worker runs it: fetch the snapshot, scan it (JSON.parse fallback), account epochs in the
 * shared table, return only the clients whose usage changed. Exported for workers/usage.ts and for in-process tests.
 */
import {
  COUNTER_UNIT,
  fetchSnapshot,
  parseSnapshotFallback,
  SnapshotBuffer,
  SnapshotScan,
  type AddressSink,
  type FetchOutcome,
  type FetchProblem,
  type PortalFlavour as Flavour,
  type SinkFor,
  type SnapshotProblem,
  type SnapshotSource,
} from '../portal/index.ts';
import { EpochAccountant } from './epochs.ts';
import type { CounterTable } from './table.ts';

/** Everything that can make a tick skip its snapshot (keys of `stats.skipped`). */
export type SkipReason = FetchProblem | SnapshotProblem | 'worker-error' | 'counters-unreadable';

/** `inline` hands the snapshot bytes in directly (tests, and callers that already hold the text). */
export type TaskSource = SnapshotSource | { kind: 'inline'; text: string };

export interface UsageTask {
  tick: number;
  table: CounterTable;
  source: TaskSource;
  flavour: Flavour | 'auto';
  timeoutMs: number;
  /** The cap on one snapshot (`main.portal_output_max`); the fetch bounds it further by the declared client count. */
  maxBytes?: number;
  /** Int32Array(1) on a SharedArrayBuffer: the worker stores `tick` there and notifies as soon as the fetch is over,
   *  so the main thread can release the portal's ndsctl queue before the scan. */
  fetchSignal?: SharedArrayBuffer;
  /** Also hand back every client's MAC and IP (the LAN endpoint's lookups want them: meter/address-book.ts). */
  addresses?: boolean;
  /** Test hook: fail after the table was written, to prove an uncommitted tick is recomputed, not lost or doubled. */
  fault?: 'exit' | 'throw';
}

export type UsageResult =
  | {
      tick: number;
      ok: true;
      flavour: Flavour;
      clients: number;
      /** True when the scanner stopped and JSON.parse read the snapshot. */
      fallback: boolean;
      scanStop?: string;
      /** [slot, downloadBytes, uploadBytes] triples (SharedArrayBuffer). */
      deltas: Float64Array;
      count: number;
      newEpochs: number;
      arrivals: number;
      departures: number;
      /** Present when the table had to grow: the main thread adopts this generation on commit. */
      table?: CounterTable;
      snapshotBytes: number;
      /** Until the reply ended, its clients scanned and accounted as they arrived (socket); scanMs: the rest. */
      fetchMs: number;
      scanMs: number;
      /** When the task asked: mac, ip, mac, ip, … ('' for no address); absent if the list could not be read whole. */
      addresses?: string[];
    }
  | { tick: number; ok: false; problem: SkipReason; message: string; fetchMs: number };

/** `buffer`: the thread's snapshot buffer, kept across tasks (one task at a time per thread). */
export async function runUsageTask(
  task: UsageTask,
  accountant: EpochAccountant,
  buffer?: SnapshotBuffer,
): Promise<UsageResult> {
  const started = performance.now();
  accountant.attach(task.table);
  accountant.beginTick(task.tick);
  const sinkFor = usageSink(accountant);
  let flavour: Flavour;
  let fallback = false;
  let scanStop: string | undefined;
  // The clients' addresses ride on the scan when asked for (mac, ip pairs; '' for none): no second pass.
  const addresses: string[] | undefined = task.addresses === true ? [] : undefined;
  const addressSink: AddressSink | undefined =
    addresses &&
    ((mac, ip) => {
      addresses.push(mac, ip);
    });
  // The clients are scanned and accounted as the reply arrives; a reply that fails part-way puts back what its first
  // clients wrote (resetTick), as if it had never been read.
  const scan = new SnapshotScan(task.flavour, sinkFor, addressSink);
  let bytes: Uint8Array;
  if (task.source.kind === 'inline') {
    bytes = Buffer.from(task.source.text, 'utf8');
  } else {
    let fetched: FetchOutcome;
    try {
      fetched = await fetchSnapshot(task.source, {
        timeoutMs: task.timeoutMs,
        ...(task.maxBytes === undefined ? {} : { maxBytes: task.maxBytes }),
        into: buffer ?? new SnapshotBuffer(),
        onBytes: (soFar) => scan.feed(soFar),
      });
    } catch (err) {
      // The scan of the clients so far threw (the task fails as a worker error): what they wrote is put back.
      accountant.resetTick();
      throw err;
    }
    if (!fetched.ok) {
      accountant.resetTick();
      signalFetched(task);
      return {
        tick: task.tick,
        ok: false,
        problem: fetched.problem,
        message: fetched.message,
        fetchMs: performance.now() - started,
      };
    }
    bytes = fetched.bytes;
  }
  signalFetched(task);
  const fetchMs = performance.now() - started;

  const scanned = scan.end(bytes);
  if (scanned.ok) {
    flavour = scanned.flavour;
  } else {
    fallback = true;
    scanStop = `${scanned.why} at byte ${scanned.at}`;
    accountant.resetTick();
    if (addresses !== undefined) addresses.length = 0;
    const parsed = parseSnapshotFallback(bytes, task.flavour, sinkFor, addressSink);
    if (!parsed.ok) {
      // It may have fed clients before it gave up (a doubled MAC): put them back too.
      accountant.resetTick();
      return { tick: task.tick, ok: false, problem: parsed.problem, message: parsed.message, fetchMs };
    }
    flavour = parsed.flavour;
  }
  const result = accountant.finish();
  if (task.fault === 'exit') process.exit(70);
  if (task.fault === 'throw') throw new Error('injected fault after accounting');
  return {
    tick: task.tick,
    ok: true,
    flavour,
    clients: result.clients,
    fallback,
    ...(scanStop === undefined ? {} : { scanStop }),
    deltas: result.deltas,
    count: result.count,
    newEpochs: result.newEpochs,
    arrivals: result.arrivals,
    departures: result.departures,
    ...(accountant.tableGrew && accountant.currentTable ? { table: accountant.currentTable } : {}),
    snapshotBytes: bytes.length,
    fetchMs,
    scanMs: performance.now() - started - fetchMs,
    ...(addresses === undefined ? {} : { addresses }),
  };
}

function signalFetched(task: UsageTask): void {
  if (task.fetchSignal === undefined) return;
  const cell = new Int32Array(task.fetchSignal);
  Atomics.store(cell, 0, task.tick);
  Atomics.notify(cell, 0);
}

/**
 * The scan's sink into the accountant, counters in bytes. A MAC listed twice (openNDS: one client per MAC and address,
 * a device with a new lease) is read by its first listing here: the tick goes on for every other client
 * (docs/operations.md "A new address under the same MAC").
 */
function usageSink(accountant: EpochAccountant): SinkFor {
  return (flavour) => {
    const unit = COUNTER_UNIT[flavour];
    return (hi, lo, token, state, down, up) => {
      accountant.observe(hi, lo, token, state, down * unit, up * unit);
      return true;
    };
  };
}
