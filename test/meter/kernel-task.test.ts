// tier: daemon
/**
 * The kernel tick as the worker runs it (meter/kernel-task.ts): the portal's listing read only when asked, its roster
 * and addresses handed back, the kernel's counters as the usage (the listing's own counters ignored), the kept roster
 * used between listings, counters the roster does not know reported, counters on another address than the listing's
 * reported; the roster kept by the thread under the main thread's key (`roster-unknown` when it holds another, before
 * it reads anything); the same through the real Piscina pool (workers/usage.ts, `name: 'kernel'`), where a thread
 * that replaced a dead one holds no roster; and, as root, the dump read from the real nft.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { EpochAccountant } from '../../src/meter/epochs.ts';
import {
  KeptRoster,
  runKernelTask,
  type KernelUsageResult,
  type KernelUsageTask,
  type RosterRef,
} from '../../src/meter/kernel-task.ts';
import { createPoolRunner } from '../../src/meter/pool.ts';
import { createTable, TableView, type CounterTable } from '../../src/meter/table.ts';
import { counterTableLines, countLines, STATE_CODES } from '../../src/portal/index.ts';
import { skipTest } from '../helpers/skip.ts';

const WORKER = fileURLToPath(new URL('../../workers/usage.ts', import.meta.url));
const LISTING = readFileSync(new URL('../fixtures/ndsctl/opennds-9.10-all-3-clients.json', import.meta.url), 'utf8');
const [A, B, C] = ['02:00:00:00:0c:01', '02:00:00:00:0c:02', '02:00:00:00:0c:03'] as const;
const D = '02:00:00:00:0c:04';

/**
 * nft 1.0.6's `-j list table netdev sluice_count`: [mac, handle base, down, up, map key] per client (the download
 * counter's packets 0: its bytes are the reading's, no Ethernet header taken off).
 */
function dump(clients: Array<[mac: string, handle: number, down: number, up: number, ip: string]>): string {
  const hex = (mac: string): string => mac.replace(/:/g, '');
  return JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { table: { family: 'netdev', name: 'sluice_count', handle: 5 } },
      ...clients.flatMap(([mac, h, down, up]) => [
        {
          counter: {
            family: 'netdev',
            name: `cu_${hex(mac)}`,
            table: 'sluice_count',
            handle: h,
            packets: 1,
            bytes: up,
          },
        },
        {
          counter: {
            family: 'netdev',
            name: `cd_${hex(mac)}`,
            table: 'sluice_count',
            handle: h + 1,
            packets: 0,
            bytes: down,
          },
        },
      ]),
      {
        map: {
          family: 'netdev',
          name: 'cdown',
          table: 'sluice_count',
          type: 'ipv4_addr',
          handle: 9,
          map: 'counter',
          elem: clients.map(([mac, , , , ip]) => [ip, `cd_${hex(mac)}`]),
        },
      },
    ],
  });
}

/** The main thread's part: run, adopt a grown table, commit, sum each MAC's usage. */
class Main {
  table: CounterTable = createTable(16);
  tick = 0;
  used = new Map<string, number>();
  constructor(private readonly run: (t: KernelUsageTask) => Promise<KernelUsageResult>) {}
  async next(
    task: Omit<KernelUsageTask, 'kind' | 'tick' | 'table' | 'timeoutMs'>,
  ): Promise<Extract<KernelUsageResult, { ok: true }>> {
    const r = await this.run({ kind: 'kernel', tick: ++this.tick, table: this.table, timeoutMs: 5000, ...task });
    assert.ok(r.ok, r.ok ? '' : r.message);
    if (!r.ok) throw new Error('unreachable');
    if (r.table) this.table = r.table;
    const view = new TableView(this.table);
    for (let k = 0; k < r.count; k++) {
      const mac = view.mac(r.deltas[k * 3]!);
      this.used.set(mac, (this.used.get(mac) ?? 0) + r.deltas[k * 3 + 1]! + r.deltas[k * 3 + 2]!);
    }
    view.commit(this.tick);
    return r;
  }
  usage(mac: string): number {
    return this.used.get(mac) ?? 0;
  }
}

async function scenario(run: (t: KernelUsageTask) => Promise<KernelUsageResult>): Promise<void> {
  const m = new Main(run);
  const listing = { source: { kind: 'inline' as const, text: LISTING }, flavour: 'auto' as const, rosterKey: 'r1' };
  // Tick 1 lists: the roster is the portal's three clients; A's counters are on the listed address, B's on another.
  const first = await m.next({
    listing,
    counters: {
      kind: 'inline',
      text: dump([
        [A, 10, 1000, 100, '10.77.0.148'],
        [B, 20, 50, 5, '10.77.0.9'],
      ]),
    },
  });
  assert.equal(first.listed?.roster, [
    [A, STATE_CODES.Authenticated],
    [B, STATE_CODES.Authenticated],
    [C, STATE_CODES.Preauthenticated],
  ]);
  assert.equal(first.listed?.addresses, [A, '10.77.0.148', B, '10.77.0.149', C, '10.77.0.150']);
  // Each client's token as printed, for the gate's calls by token (portal/tokens.ts).
  assert.equal(first.listed?.tokens, [A, 'd7eecbd4', B, '0fcb1f19', C, '7727f673']);
  assert.is(first.listed?.flavour, 'opennds');
  assert.equal(first.unlisted, []);
  assert.is(first.clients, 3);
  assert.is(first.rosterKey, 'r1', "the thread keeps the listing's roster under the key it was given");
  assert.is(m.usage(A), 0, "a first sighting is the base, as with the portal's counters");
  // By key alone from here: the thread holds the listing's roster.
  const roster = { key: 'r1' };

  // Tick 2 does not list (the listing's text would fail the scan: proof it is not read): the kept roster, kernel bytes.
  const second = await m.next({
    roster,
    counters: {
      kind: 'inline',
      text: dump([
        [A, 10, 5000, 300, '10.77.0.148'],
        [B, 20, 50, 5, '10.77.0.9'],
        [D, 30, 70, 7, '10.77.0.151'],
      ]),
    },
  });
  assert.is(second.listed, undefined);
  assert.is(second.rosterKey, 'r1');
  assert.is(second.snapshotBytes, 0);
  assert.is(
    m.usage(A),
    4200,
    "the kernel's growth, not the listing's counters (which stay where the fixture has them)",
  );
  assert.equal(
    second.unlisted,
    [D],
    'D has counters (a purchase) that the last listing does not hold: the main thread lists',
  );
  assert.is(m.usage(D), 0, 'not in the roster: not accounted until listed');

  // Counters made again (a gate closed and opened): a new epoch, counted from 0.
  await m.next({
    roster,
    counters: {
      kind: 'inline',
      text: dump([
        [A, 40, 800, 200, '10.77.0.148'],
        [B, 20, 50, 5, '10.77.0.9'],
      ]),
    },
  });
  assert.is(m.usage(A), 5200);

  // A dump that is not nft's JSON skips the tick, nothing accounted; the table is untouched for the next one.
  const bad = await run({
    kind: 'kernel',
    tick: ++m.tick,
    table: m.table,
    timeoutMs: 5000,
    roster,
    counters: { kind: 'inline', text: 'Error: No such file or directory' },
  });
  assert.equal(bad.ok ? '' : bad.problem, 'counters-unreadable');
  m.tick--;
  await m.next({ roster, counters: { kind: 'inline', text: dump([[A, 40, 900, 200, '10.77.0.148']]) } });
  assert.is(m.usage(A), 5300);
}

test(
  "in-process: listing only when asked, the kernel's " + 'counters as usage, unlisted and moved clients reported',
  async () => {
    const accountant = new EpochAccountant();
    const kept = new KeptRoster();
    await scenario((t) => runKernelTask(t, accountant, undefined, kept));
  },
);

test('a roster by a key the thread does not hold: roster-unknown, nothing read; sent, it is kept', async () => {
  const accountant = new EpochAccountant();
  const kept = new KeptRoster();
  const run = (t: Omit<KernelUsageTask, 'kind' | 'table' | 'timeoutMs'>): Promise<KernelUsageResult> =>
    runKernelTask({ kind: 'kernel', table, timeoutMs: 5000, ...t }, accountant, undefined, kept);
  let table = createTable(16);
  const counters = { kind: 'inline' as const, text: dump([[A, 10, 1000, 100, '10.77.0.148']]) };
  // Neither the listing nor the dump could be read (no such command): a skip that reads nothing says so.
  const unknown = await run({
    tick: 1,
    roster: { key: 'k1' },
    listing: { source: { kind: 'inline', text: 'not a listing' }, flavour: 'auto', rosterKey: 'k2' },
    counters: { kind: 'command', argv: ['/nonexistent/nft'] },
  });
  assert.equal(unknown.ok ? '' : unknown.problem, 'roster-unknown');
  const sent = await run({ tick: 1, roster: { key: 'k1', entries: [[A, STATE_CODES.Authenticated]] }, counters });
  assert.ok(sent.ok);
  if (!sent.ok) return;
  if (sent.table) table = sent.table;
  assert.equal([sent.rosterKey, sent.clients, sent.unlisted], ['k1', 1, []]);
  new TableView(table).commit(1);
  const byKey = await run({
    tick: 2,
    roster: { key: 'k1' },
    counters: { kind: 'inline', text: dump([[A, 10, 3000, 100, '10.77.0.148']]) },
  });
  assert.ok(byKey.ok);
  if (byKey.ok) assert.equal([byKey.count, byKey.deltas[1]], [1, 2000], 'the kept roster accounts A');
  // Another roster since (the main thread changed it): its key is not the kept one's.
  const other = await run({ tick: 3, roster: { key: 'k3' }, counters });
  assert.equal(other.ok ? '' : other.problem, 'roster-unknown');
});

test('the real Piscina pool (workers/usage.ts, its `kernel` export): the same', async () => {
  const pool = createPoolRunner({ workerPath: WORKER, execArgv: ['--import', 'tsx'] });
  try {
    await scenario((t) => pool.runKernel!(t));
  } finally {
    await pool.destroy();
  }
});

test("the real pool: a thread replacing a dead one holds no roster (not the dead one's); sent, it's kept", async () => {
  const pool = createPoolRunner({ workerPath: WORKER, execArgv: ['--import', 'tsx'] });
  const counters = { kind: 'inline' as const, text: dump([[A, 10, 1000, 100, '10.77.0.148']]) };
  const table = createTable(16);
  const task = (tick: number, roster: RosterRef, fault?: 'exit'): KernelUsageTask => ({
    kind: 'kernel',
    tick,
    table,
    timeoutMs: 5000,
    roster,
    counters,
    ...(fault && { fault }),
  });
  try {
    const held = await pool.runKernel!(task(1, { key: 'p1', entries: [[A, STATE_CODES.Authenticated]] }));
    assert.ok(held.ok);
    assert.ok((await pool.runKernel!(task(2, { key: 'p1' }))).ok, 'the same thread holds it');
    // The thread exits mid-tick: Piscina starts another for the next task.
    await pool.runKernel!(task(3, { key: 'p1' }, 'exit')).then(
      () => assert.unreachable('the thread exited'),
      () => undefined,
    );
    const replaced = await pool.runKernel!(task(3, { key: 'p1' }));
    assert.equal(replaced.ok ? '' : replaced.problem, 'roster-unknown');
    const resent = await pool.runKernel!(task(3, { key: 'p1', entries: [[A, STATE_CODES.Authenticated]] }));
    assert.ok(resent.ok);
    assert.ok((await pool.runKernel!(task(4, { key: 'p1' }))).ok, 'and the new thread keeps it');
  } finally {
    await pool.destroy();
  }
});

const root = process.getuid?.() === 0;
const haveNft = spawnSync('nft', ['--version']).status === 0;
const haveIp = spawnSync('ip', ['-V']).status === 0;
if (!root || !haveNft || !haveIp) {
  // CI runs as root with nft and ip installed: a skip there is a failure.
  skipTest(
    test,
    'the kernel task on the real nft',
    `needs root, nft and ip (root=${root} nft=${haveNft} ip=${haveIp})`,
    { ciInstalls: true },
  );
} else {
  const ns = `kt-${randomBytes(3).toString('hex')}`;
  test.before(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'lan1']);
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input: ['table netdev sluice_count {', ...counterTableLines(['lan']), '}', ...countLines(A), ''].join('\n'),
    });
  });
  test.after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
  });

  test('real nft: the worker reads the dump itself; a missing table is a skipped tick, not a crash', async () => {
    const accountant = new EpochAccountant();
    const argv = ['ip', 'netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'netdev', 'sluice_count'];
    const r = await runKernelTask(
      {
        kind: 'kernel',
        tick: 1,
        table: createTable(16),
        timeoutMs: 5000,
        roster: { key: 'n1', entries: [[A, STATE_CODES.Authenticated]] },
        counters: { kind: 'command', argv },
      },
      accountant,
    );
    assert.ok(r.ok);
    if (r.ok) assert.equal([r.clients, r.unlisted, r.dumpBytes > 0], [1, [], true]);
    execFileSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', 'sluice_count']);
    const gone = await runKernelTask(
      {
        kind: 'kernel',
        tick: 2,
        table: createTable(16),
        timeoutMs: 5000,
        roster: { key: 'n2', entries: [] },
        counters: { kind: 'command', argv },
      },
      accountant,
    );
    assert.equal(gone.ok ? '' : gone.problem, 'counters-unreadable');
  });
}

test.run();
