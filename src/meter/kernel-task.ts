/**
 * One usage tick from the kernel's counters, as the worker runs it (the counterpart of task.ts's portal tick): read one
 * `nft -j list table netdev sluice_count` dump, and the portal's listing only when the main thread says one is due;
 * scan the listing into a roster (each listed client's MAC and state) and its addresses; account every rostered
 * client's kernel reading in the shared table (meter/kernel-tick.ts). The listing's own counters are not used: the
 * kernel's are the usage, the listing says only who is there and in which state (docs/captive-portal.md, "Kernel
 * counters").
 *
 * Without a listing the roster is the one the main thread kept from the last one (the portal's states change only when
 * sluice auths or deauths, which ask for a listing, or when the portal acts by itself: its restart, an idle timeout;
 * the main thread lists then too, see the tick loop).
 *
 * The roster is not copied to the thread every tick (10,000 clients: ~0.33 MB cloned, ~7 ms of the tick): each thread
 * keeps the last roster it was handed or scanned (KeptRoster) under a key the main thread gave it, and the main thread
 * sends the key alone when a thread holds it. A thread that holds another (a new or replaced thread, the main thread's
 * own runner, a roster changed on the main thread since) answers `roster-unknown` before it reads anything, and the
 * main thread sends the tick again with the roster itself: a stale roster is never used, and no tick goes unbilled.
 */
import {
  fetchSnapshot,
  macFromParts,
  parseSnapshotFallback,
  sharedCommandShell,
  scanCounterDump,
  scanSnapshot,
  SnapshotBuffer,
  type AddressSink,
  type CounterDump,
  type FetchProblem,
  type PortalFlavour as Flavour,
  type SinkFor,
  type SnapshotProblem,
  type SnapshotSource,
} from '../portal/index.ts';
import { SluiceError } from '../errors.ts';
import type { EpochAccountant } from './epochs.ts';
import { accountKernelDump, PreparedRoster, type RosterEntry } from './kernel-tick.ts';
import type { CounterTable } from './table.ts';
import type { SkipReason } from './task.ts';

/** The counters' dump: nft's argv (`main.nft` + `-j list table netdev sluice_count`), or the text itself (tests). */
export type CounterSource = { kind: 'command'; argv: readonly string[] } | { kind: 'inline'; text: string };

export interface KernelUsageTask {
  kind: 'kernel';
  tick: number;
  table: CounterTable;
  counters: CounterSource;
  /**
   * Read the portal's listing this tick (then `roster` is ignored unless the listing fails). `rosterKey`: the thread
   * keeps the listing's roster under it (the main thread's name for that roster from then on).
   */
  listing?: {
    source: SnapshotSource | { kind: 'inline'; text: string };
    flavour: Flavour | 'auto';
    maxBytes?: number;
    rosterKey?: string;
  };
  /** The roster of the last listing: used when no listing is read this tick, or when the one asked for fails. */
  roster?: RosterRef;
  timeoutMs: number;
  /** As UsageTask.fetchSignal: stored and notified once the listing (the portal's part) is read, or at once without. */
  fetchSignal?: SharedArrayBuffer;
  fault?: 'exit' | 'throw';
}

/**
 * A roster by its key (unique in the process, never reused for another roster): with `entries` when the thread may not
 * hold it (it keeps them under `key`), without when the main thread saw a thread take it.
 */
export interface RosterRef {
  key: string;
  entries?: readonly RosterEntry[];
}

/** `roster-unknown`: the task named a roster by key that this thread does not hold; nothing was read or accounted. */
export type KernelSkip = SkipReason | 'roster-unknown';

/** The roster a thread keeps between tasks, by the main thread's key (one at a time: the last handed or scanned). */
export class KeptRoster {
  private key: string | undefined;
  private roster: PreparedRoster | undefined;

  /** The roster named by `ref`: its entries (kept from now), or the one kept under its key; undefined if not held. */
  take(ref: RosterRef): PreparedRoster | undefined {
    if (ref.entries !== undefined) return this.keep(ref.key, ref.entries);
    return ref.key === this.key ? this.roster : undefined;
  }

  keep(key: string, entries: readonly RosterEntry[]): PreparedRoster {
    this.key = key;
    this.roster = PreparedRoster.of(entries);
    return this.roster;
  }
}

export type KernelUsageResult =
  | {
      tick: number;
      ok: true;
      kind: 'kernel';
      clients: number;
      deltas: Float64Array;
      count: number;
      newEpochs: number;
      arrivals: number;
      departures: number;
      table?: CounterTable;
      /**
       * Present when the listing was read: the new roster, its flavour, mac, ip, mac, ip… ('' for no address), and mac,
       * token, mac, token… (the gate's calls by token: portal/tokens.ts).
       */
      listed?: Listed;
      /** The roster this thread holds from now, by the main thread's key (the listing's, or the one it was sent). */
      rosterKey?: string;
      /** The listing was asked for and not read (why): the kept roster stood in for it. */
      listingProblem?: string;
      /** Clients with counters the roster does not hold (a purchase the portal has not listed yet): list them. */
      unlisted: string[];
      dumpBytes: number;
      snapshotBytes: number;
      fetchMs: number;
      scanMs: number;
    }
  | { tick: number; ok: false; kind: 'kernel'; problem: KernelSkip; message: string; fetchMs: number };

const EMPTY_ROSTER = PreparedRoster.of([]);

/** The dump's size bound: ~300 bytes per client in nft's JSON, so 16 MiB is ~50k clients. */
const DUMP_MAX_BYTES = 16 * 1024 * 1024;

/** `kept`: the thread's kept roster, across tasks (one task at a time per thread). */
export async function runKernelTask(
  task: KernelUsageTask,
  accountant: EpochAccountant,
  buffer: SnapshotBuffer = new SnapshotBuffer(),
  kept: KeptRoster = new KeptRoster(),
): Promise<KernelUsageResult> {
  const started = performance.now();
  const fail = (problem: KernelSkip, message: string): KernelUsageResult => ({
    tick: task.tick,
    ok: false,
    kind: 'kernel',
    problem,
    message,
    fetchMs: performance.now() - started,
  });

  // Before anything is read (the portal's listing is not read twice): the main thread sends the roster itself next.
  const keptRoster = task.roster === undefined ? undefined : kept.take(task.roster);
  if (task.roster !== undefined && keptRoster === undefined) {
    signalFetched(task);
    return fail('roster-unknown', `this thread does not hold roster ${task.roster.key}`);
  }

  // The portal's part first (the main thread holds its queue until the signal), the kernel's after.
  let listingBytes: Buffer | undefined;
  let listingProblem: string | undefined;
  if (task.listing !== undefined) {
    const src = task.listing.source;
    if (src.kind === 'inline') listingBytes = Buffer.from(src.text, 'utf8');
    else {
      const fetched = await fetchSnapshot(src, {
        timeoutMs: task.timeoutMs,
        into: buffer,
        ...(task.listing.maxBytes === undefined ? {} : { maxBytes: task.listing.maxBytes }),
      });
      if (fetched.ok) listingBytes = fetched.bytes;
      // The kernel still counts while the portal does not answer (down, busy, restarting): with a kept roster the
      // tick bills on, and the main thread asks again later.
      else if (keptRoster !== undefined) listingProblem = `${fetched.problem}: ${fetched.message}`;
      else {
        signalFetched(task);
        return fail(fetched.problem, fetched.message);
      }
    }
  }
  signalFetched(task);

  let dumpBytes: Uint8Array;
  if (task.counters.kind === 'inline') dumpBytes = Buffer.from(task.counters.text, 'utf8');
  else {
    const read = await readDump(task.counters.argv, task.timeoutMs);
    if (!read.ok) return fail(read.problem, read.message);
    dumpBytes = read.bytes;
  }
  const fetchMs = performance.now() - started;

  let dump: CounterDump;
  try {
    dump = scanCounterDump(dumpBytes);
  } catch (err) {
    return fail('counters-unreadable', (err as SluiceError).message);
  }

  let listed: Listed | undefined;
  if (listingBytes !== undefined) {
    const scanned = scanRoster(listingBytes, task.listing!.flavour);
    if (scanned.ok) listed = scanned;
    else if (keptRoster !== undefined) listingProblem = `${scanned.problem}: ${scanned.message}`;
    else return fail(scanned.problem, scanned.message);
  }
  const listedKey = listed === undefined ? undefined : task.listing?.rosterKey;
  const roster =
    listed === undefined
      ? (keptRoster ?? EMPTY_ROSTER)
      : listedKey === undefined
        ? PreparedRoster.of(listed.roster)
        : kept.keep(listedKey, listed.roster);
  const rosterKey = listed === undefined ? task.roster?.key : listedKey;

  accountant.attach(task.table);
  accountant.beginTick(task.tick, false);
  const { deltas: result, unlisted: unlistedAt } = accountKernelDump(accountant, roster, dump);
  if (task.fault === 'exit') process.exit(70);
  if (task.fault === 'throw') throw new Error('injected fault after accounting');

  const unlisted = unlistedAt.map((k) => dump.mac(k));
  return {
    tick: task.tick,
    ok: true,
    kind: 'kernel',
    clients: result.clients,
    deltas: result.deltas,
    count: result.count,
    newEpochs: result.newEpochs,
    arrivals: result.arrivals,
    departures: result.departures,
    ...(accountant.tableGrew && accountant.currentTable ? { table: accountant.currentTable } : {}),
    ...(listed === undefined ? {} : { listed }),
    ...(rosterKey === undefined ? {} : { rosterKey }),
    ...(listingProblem === undefined ? {} : { listingProblem }),
    unlisted,
    dumpBytes: dumpBytes.length,
    snapshotBytes: listingBytes?.length ?? 0,
    fetchMs,
    scanMs: performance.now() - started - fetchMs,
  };
}

interface Listed {
  roster: RosterEntry[];
  flavour: Flavour;
  addresses: string[];
  tokens: string[];
  fallback: boolean;
}

type Scanned = ({ ok: true } & Listed) | { ok: false; problem: SnapshotProblem; message: string };

/**
 * The listing → roster, addresses and tokens, through the scanner (JSON.parse when it stops), counters ignored. A MAC
 * the portal lists more than once (openNDS keeps one client per MAC and address: a device that took a new lease is
 * listed again, Preauthenticated, its old address still Authenticated) is its last listing, the address it moved to:
 * its gate is that one's, so a paying client's new address is re-opened (by that listing's token) like any gate the
 * portal closed. The kernel counts and brakes it by MAC all the while.
 */
export function scanRoster(bytes: Buffer, flavour: Flavour | 'auto'): Scanned {
  const scanned = scanRosterListed(bytes, flavour);
  return scanned.ok ? { ...scanned, ...lastListed(scanned) } : scanned;
}

/** Of each MAC listed more than once, its last listing alone (roster, addresses and tokens). */
function lastListed(l: Listed): Pick<Listed, 'roster' | 'addresses' | 'tokens'> {
  const last = new Map<string, number>();
  l.roster.forEach(([mac], i) => last.set(mac, i));
  if (last.size === l.roster.length) return l;
  const keep = (_: unknown, i: number): boolean => last.get(l.roster[i]![0]) === i;
  const pairs = (flat: string[]): string[] => {
    const out: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) if (keep(null, i / 2)) out.push(flat[i]!, flat[i + 1]!);
    return out;
  };
  return { roster: l.roster.filter(keep), addresses: pairs(l.addresses), tokens: pairs(l.tokens) };
}

function scanRosterListed(bytes: Buffer, flavour: Flavour | 'auto'): Scanned {
  const roster: RosterEntry[] = [];
  const addresses: string[] = [];
  const tokens: string[] = [];
  const sinkFor: SinkFor = () => (hi, lo, _token, state) => {
    roster.push([macFromParts(hi, lo), state]);
    return true;
  };
  const addressSink: AddressSink = (mac, ip, token) => {
    addresses.push(mac, ip);
    tokens.push(mac, token);
  };
  const scanned = scanSnapshot(bytes, flavour, sinkFor, addressSink, true);
  if (scanned.ok) return { ok: true, roster, flavour: scanned.flavour, addresses, tokens, fallback: false };
  roster.length = 0;
  addresses.length = 0;
  tokens.length = 0;
  const parsed = parseSnapshotFallback(bytes, flavour, sinkFor, addressSink, true);
  if (!parsed.ok) return { ok: false, problem: parsed.problem, message: parsed.message };
  return { ok: true, roster, flavour: parsed.flavour, addresses, tokens, fallback: true };
}

async function readDump(
  argv: readonly string[],
  timeoutMs: number,
): Promise<
  { ok: true; bytes: Buffer } | { ok: false; problem: FetchProblem | 'counters-unreadable'; message: string }
> {
  if (argv.length === 0) return { ok: false, problem: 'failed', message: 'empty nft command' };
  const chunks: Buffer[] = [];
  let size = 0;
  // Through the thread's long-lived shell: a spawn from Node forks the whole daemon every tick (command-shell.ts). Its
  // own: on the main thread (a small dump's tick runs there: meter/pool.ts) a gate's nft run does not wait behind it.
  const outcome = await sharedCommandShell('counters').run({
    argv,
    stdin: '',
    timeoutMs,
    onStdout: (chunk) => {
      size += chunk.length;
      if (size > DUMP_MAX_BYTES) return `nft printed more than ${DUMP_MAX_BYTES} bytes`;
      chunks.push(chunk);
      return undefined;
    },
  });
  switch (outcome.kind) {
    case 'spawn-failed':
      return {
        ok: false,
        problem: 'unreachable',
        message: `cannot run ${argv[0]}: ${(outcome.error as Error).message}`,
      };
    case 'killed':
      return {
        ok: false,
        problem: outcome.why === 'timeout' ? 'timeout' : 'failed',
        message: outcome.refusal ?? `nft list took longer than ${timeoutMs} ms`,
      };
    case 'exited':
      // The bytes as they came: the scanner reads them without a string of 3 MB made first.
      if (outcome.code === 0) return { ok: true, bytes: Buffer.concat(chunks, size) };
      // The table is gone (flushed by a firewall reload): the main thread rebuilds it.
      return {
        ok: false,
        problem: 'counters-unreadable',
        message: `nft list exited with ${outcome.code ?? outcome.signal}: ${outcome.stderr.trim().slice(0, 200)}`,
      };
  }
}

function signalFetched(task: KernelUsageTask): void {
  if (task.fetchSignal === undefined) return;
  const cell = new Int32Array(task.fetchSignal);
  Atomics.store(cell, 0, task.tick);
  Atomics.notify(cell, 0);
}
