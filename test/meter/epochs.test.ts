// tier: fast
// Counter-epoch accounting over the shared table, driven through the worker's task with real snapshot text.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EpochAccountant } from '../../src/meter/epochs.ts';
import { runUsageTask, type UsageResult } from '../../src/meter/task.ts';
import { committedMarks, createTable, seedTable, TableView, type CounterTable } from '../../src/meter/table.ts';
import { committedHalves } from './table-halves.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { macToParts, STATE_CODES } from '../../src/portal/index.ts';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';

/** The main thread's part, reduced: run a tick, commit it if it worked, sum usage per MAC. */
class Harness {
  table: CounterTable = createTable(16);
  tick = 0;
  accountant = new EpochAccountant();
  used = new Map<string, number>();
  constructor(readonly portal: PortalModel) {}
  async run(
    opts: { commit?: boolean; settle?: boolean; text?: string; accountant?: EpochAccountant } = {},
  ): Promise<UsageResult> {
    const r = await runUsageTask(
      {
        tick: ++this.tick,
        table: this.table,
        source: { kind: 'inline', text: opts.text ?? this.portal.renderJson() },
        flavour: 'auto',
        timeoutMs: 1000,
      },
      opts.accountant ?? this.accountant,
    );
    if (r.ok && opts.commit !== false) {
      if (r.table) this.table = r.table;
      const view = new TableView(this.table);
      for (let k = 0; k < r.count; k++) {
        const mac = view.mac(r.deltas[k * 3]!);
        this.used.set(mac, (this.used.get(mac) ?? 0) + r.deltas[k * 3 + 1]! + r.deltas[k * 3 + 2]!);
      }
      view.commit(r.tick);
      // As the tick loop does once the tick's apply is over.
      if (opts.settle !== false) view.settle(r.tick);
    }
    return r;
  }
  usage(mac: string): number {
    return this.used.get(mac) ?? 0;
  }
}

function portal(flavour: 'opennds' | 'nodogsplash' = 'opennds'): PortalModel {
  const p = new PortalModel({ flavour }, { clock: { now: () => 1_795_221_800_000 } });
  p.addClient(A, '10.0.0.10');
  p.addClient(B, '10.0.0.11');
  p.auth(A);
  p.auth(B);
  return p;
}

test('first sighting is the base: bytes counted before the meter saw the client are not billed', async () => {
  const p = portal();
  p.addTraffic(A, 5 * 1024 * 1024, 0);
  const h = new Harness(p);
  await h.run();
  assert.is(h.usage(A), 0);
  p.addTraffic(A, 10 * 1024, 2 * 1024);
  await h.run();
  assert.is(h.usage(A), 12 * 1024);
});

test('a first sighting by a tick that did not commit is the base: the next tick bills each byte after it', async () => {
  const p = portal();
  p.addTraffic(A, 5 * 1024 * 1024, 0);
  const h = new Harness(p);
  await h.run({ commit: false });
  p.addTraffic(A, 10 * 1024, 2 * 1024);
  await h.run();
  assert.is(h.usage(A), 12 * 1024);
});

test('first seen by a tick that did not commit, then away and back: its return is a new epoch, billed', async () => {
  const p = portal();
  const h = new Harness(p);
  await h.run({ commit: false });
  p.deauth(A);
  await h.run();
  // openNDS lists it again with a new token and counters from 0 after its next auth.
  p.addClient(A, '10.0.0.10');
  p.auth(A);
  p.addTraffic(A, 30 * 1024, 0);
  await h.run();
  assert.is(h.usage(A), 30 * 1024);
});

test('units: openNDS counts KiB (1024), nodogsplash kB (1000), and the floor telescopes to exact totals', async () => {
  for (const [flavour, unit] of [
    ['opennds', 1024],
    ['nodogsplash', 1000],
  ] as const) {
    const p = portal(flavour);
    const h = new Harness(p);
    await h.run();
    let total = 0;
    for (const step of [700, 1500, 333, 100_000, 1]) {
      p.addTraffic(A, step, 0);
      total += step;
      await h.run();
    }
    assert.is(h.usage(A), Math.floor(total / unit) * unit, flavour);
  }
});

test('a reading lower than the last one starts a new epoch counted from 0 (never negative)', async () => {
  const p = portal('nodogsplash');
  const h = new Harness(p);
  await h.run();
  p.addTraffic(A, 50_000, 0);
  await h.run();
  // nodogsplash re-auth keeps the token in this fake edit; only the counter drops.
  const text = p.renderJson().replace(/"downloaded":50,/, '"downloaded":7,');
  await h.run({ text });
  assert.is(h.usage(A), 50_000 + 7_000);
});

test(
  'a same-token counter that steps back 1 MiB is a glitch, ' + 'not a new epoch: 50 MiB used is not billed twice',
  async () => {
    const p = portal();
    const h = new Harness(p);
    await h.run();
    p.addTraffic(A, 50 * 1024 * 1024, 0);
    await h.run();
    assert.is(h.usage(A), 50 * 1024 * 1024);
    // 49 MiB, same token
    const dipped = p.renderJson().replace(/"download_this_session":"51200"/, '"download_this_session":"50176"');
    assert.ok(dipped !== p.renderJson(), 'the fake dip applies');
    const r = await h.run({ text: dipped });
    assert.ok(r.ok && r.newEpochs === 0);
    assert.is(h.usage(A), 50 * 1024 * 1024);
    // Only what is proven: nothing until the counter passes its highest reading again, then exactly the excess.
    p.addTraffic(A, 1024 * 1024, 0); // 51 MiB
    await h.run();
    assert.is(h.usage(A), 51 * 1024 * 1024);
  },
);

test('a changed token starts a new epoch even when the counter is higher', async () => {
  const p = portal();
  const h = new Harness(p);
  await h.run();
  p.addTraffic(A, 10 * 1024, 0);
  await h.run();
  p.deauth(A); // openNDS: the client leaves the list and comes back with a new token, counters at 0
  p.addClient(A, '10.0.0.10');
  p.auth(A);
  p.addTraffic(A, 30 * 1024, 0);
  const r = await h.run();
  assert.ok(r.ok && r.newEpochs === 1);
  assert.is(h.usage(A), 40 * 1024);
});

test('vanished and came back: a new epoch, nothing charged across the gap, nothing counted twice', async () => {
  const p = portal();
  const h = new Harness(p);
  await h.run();
  p.addTraffic(A, 4 * 1024, 0);
  await h.run();
  p.restart(); // portal restart: everyone gone
  const gone = await h.run();
  assert.ok(gone.ok && gone.departures === 2 && gone.clients === 0);
  p.addClient(A, '10.0.0.10');
  p.auth(A);
  p.addTraffic(A, 3 * 1024, 0);
  await h.run();
  assert.is(h.usage(A), 7 * 1024);
  p.addTraffic(A, 1024, 0);
  await h.run();
  assert.is(h.usage(A), 8 * 1024);
  assert.is(h.usage(B), 0);
});

test('a bad snapshot changes nothing: the next good one counts exactly what happened', async () => {
  const p = portal('nodogsplash');
  const h = new Harness(p);
  await h.run();
  p.addTraffic(A, 20_000, 0);
  for (const text of [
    '',
    '{"client_length": 2, "clients":{',
    p.renderJson().replace('"avg_down_speed":0.00', '"avg_down_speed":inf'),
    'ndsctl thread is busy, please try later.\n',
  ]) {
    const r = await h.run({ text });
    assert.not.ok(r.ok);
  }
  p.addTraffic(A, 5_000, 0);
  await h.run();
  assert.is(h.usage(A), 25_000);
});

test('an uncommitted tick (worker died after writing the table) is recomputed, not lost or doubled', async () => {
  const p = portal();
  const h = new Harness(p);
  await h.run();
  p.addTraffic(A, 10 * 1024, 0);
  await h.run({ commit: false });
  p.addTraffic(A, 5 * 1024, 0);
  // A fresh accountant: what a replacement worker thread starts with.
  await h.run({ accountant: new EpochAccountant() });
  assert.is(h.usage(A), 15 * 1024);
  // And an uncommitted tick across a reset.
  p.deauth(A);
  p.addClient(A, '10.0.0.10');
  p.auth(A);
  p.addTraffic(A, 2 * 1024, 0);
  await h.run({ commit: false });
  p.addTraffic(A, 1024, 0);
  await h.run();
  assert.is(h.usage(A), 18 * 1024);
});

/**
 * A's old epoch read 10 KiB by a tick that never committed (its worker died), then A re-authed (a new epoch, counters
 * from 0) and used 2 KiB: the next tick must bill the old epoch's tail and the new 2 KiB.
 */
async function oldEpochReadUncommitted(): Promise<{ p: PortalModel; h: Harness }> {
  const p = portal();
  const h = new Harness(p);
  await h.run();
  p.addTraffic(A, 10 * 1024, 0);
  await h.run({ commit: false });
  p.deauth(A);
  p.addClient(A, '10.0.0.10');
  p.auth(A);
  p.addTraffic(A, 2 * 1024, 0);
  return { p, h };
}

test("a scan that stops part-way keeps an uncommitted tick's reading for the fallback: its tail billed", async () => {
  const { p, h } = await oldEpochReadUncommitted();
  // Valid JSON the scanner stops at after it read every client (an exponent after the list): JSON.parse re-runs it.
  const text = p.renderJson().replace(/}\s*$/, ',"trusted_list_length":1e0}');
  const r = await h.run({ text });
  assert.is(r.ok && r.fallback, true);
  assert.is(h.usage(A), 12 * 1024, 'the 10 KiB the uncommitted tick read of the old epoch, and the new 2 KiB');
});

test('a MAC listed twice is read by its first listing: the tick goes on, nothing billed twice', async () => {
  const { p, h } = await oldEpochReadUncommitted();
  // B listed under A's MAC in capitals (openNDS lists a MAC once per address: a device with a new lease): A's own
  // listing, the first, stands for it; the tick is read, not given up for every client.
  const text = p.renderJson().replace(`"${B}"`, `"${A.toUpperCase()}"`);
  const r = await h.run({ text });
  assert.ok(r.ok, JSON.stringify(r));
  p.addTraffic(A, 1024, 0);
  await h.run();
  assert.is(h.usage(A), 13 * 1024, 'the 10 KiB the uncommitted tick read of the old epoch, and the new 3 KiB');
});

test("two uncommitted ticks in a row across a re-auth: the old epoch's tail billed once, with the new", async () => {
  const { p, h } = await oldEpochReadUncommitted();
  // The second tick that never commits is the one that sees the new epoch: its reading replaces the first's.
  await h.run({ commit: false });
  p.addTraffic(A, 1024, 0);
  await h.run();
  assert.is(h.usage(A), 13 * 1024, 'the 10 KiB of the old epoch, the 2 KiB the second uncommitted tick read, 1 KiB');
  p.addTraffic(A, 1024, 0);
  await h.run();
  assert.is(h.usage(A), 14 * 1024, 'and nothing billed twice after');
});

test('a client leaving right after an uncommitted tick: its tail billed, also if the departure fails', async () => {
  const p = portal();
  const h = new Harness(p);
  await h.run();
  p.addTraffic(A, 10 * 1024, 0);
  await h.run({ commit: false });
  p.deauth(A);
  await h.run({ commit: false });
  await h.run();
  assert.is(h.usage(A), 10 * 1024, 'the 10 KiB only the uncommitted tick read');
  await h.run();
  assert.is(h.usage(A), 10 * 1024);
});

/**
 * One tick of the accountant on `table`, as a worker runs it: the portal's rules, or with `kernel` the kernel's
 * (kernel-tick.ts: the tokens are counter epochs, and the pass is not undoable). What it billed per MAC, and the
 * table the main thread adopts if it commits it (a new generation when the tick grew it).
 */
function accountTick(
  table: CounterTable,
  accountant: EpochAccountant,
  tick: number,
  clients: Array<[mac: string, token: number, down: number]>,
  kernel = false,
): { billed: Map<string, number>; table: CounterTable } {
  accountant.attach(table);
  accountant.beginTick(tick, !kernel);
  if (kernel) accountant.continueEpochsAcrossAbsence();
  for (const [mac, token, down] of clients) {
    const [hi, lo] = macToParts(mac)!;
    accountant.observe(hi, lo, token, STATE_CODES.Authenticated, down, 0);
  }
  const r = accountant.finish();
  const next = accountant.tableGrew ? accountant.currentTable! : table;
  const view = new TableView(next);
  const billed = new Map<string, number>();
  for (let k = 0; k < r.count; k++) billed.set(view.mac(r.deltas[k * 3]!), r.deltas[k * 3 + 1]!);
  return { billed, table: next };
}

/** The kernel's tick, reduced (kernel-tick.ts): the accountant fed readings whose tokens are counter epochs. */
function kernelTick(
  table: CounterTable,
  accountant: EpochAccountant,
  tick: number,
  clients: Array<[mac: string, epoch: number, down: number]>,
): Map<string, number> {
  return accountTick(table, accountant, tick, clients, true).billed;
}

test('kernel epochs: an uncommitted tick, a departure, the same epoch back: each byte billed once', () => {
  const table = createTable(16);
  const view = new TableView(table);
  const acc = new EpochAccountant();
  let used = 0;
  const commit = (tick: number, billed: Map<string, number>): void => {
    used += billed.get(A) ?? 0;
    view.commit(tick);
  };
  commit(1, kernelTick(table, acc, 1, [[A, 7, 1000]]));
  commit(2, kernelTick(table, acc, 2, [[A, 7, 2000]]));
  kernelTick(table, acc, 3, [[A, 7, 5000]]); // its worker died: never committed
  commit(4, kernelTick(table, acc, 4, [])); // A out of the portal's list, its counters still there
  assert.is(used, 4000, 'the 3,000 bytes only the uncommitted tick read, billed at the departure');
  commit(5, kernelTick(table, acc, 5, [[A, 7, 5500]]));
  assert.is(used, 4500, 'back in the same epoch: only what passed since the last reading');
});

/** `n` MACs of clients other than A and B, each with token 1 and nothing counted. */
function others(n: number): Array<[mac: string, token: number, down: number]> {
  return Array.from({ length: n }, (_, i) => [`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`, 1, 0]);
}

test('an uncommitted tick that grew the table: what it read after the growth is the next base, as before it', () => {
  for (const kernel of [false, true]) {
    let table = createTable(16);
    const acc = new EpochAccountant();
    let used = 0;
    const commit = (tick: number, r: { billed: Map<string, number>; table: CounterTable }): void => {
      used += r.billed.get(A) ?? 0;
      table = r.table;
      new TableView(table).commit(tick);
    };
    commit(1, accountTick(table, acc, 1, [[A, 5, 1000]], kernel));
    commit(2, accountTick(table, acc, 2, [[A, 5, 2000]], kernel));
    // 20 arrivals listed before A: the table grows before A's reading, and the tick never commits (its worker died),
    // so the main thread keeps the generation it had.
    const grown = accountTick(table, acc, 3, [...others(20), [A, 5, 5000]], kernel);
    assert.ok(grown.table !== table && grown.billed.get(A) === 3000);
    // A's epoch ends: deauthed (gone from the list), or on the kernel's counters made again.
    commit(4, accountTick(table, acc, 4, kernel ? [[A, 6, 200]] : [], kernel));
    assert.is(used, kernel ? 4200 : 4000, `${kernel ? 'kernel' : 'portal'}: the 3,000 bytes only tick 3 read`);
    commit(5, accountTick(table, acc, 5, [[A, 6, 500]], kernel));
    assert.is(used, 4500, 'and nothing billed twice after');
  }
});

test("a restart from the checkpoint's marks after an uncommitted tick: what only that tick read billed once", () => {
  let table = createTable(16);
  let acc = new EpochAccountant();
  let used = 0;
  const commit = (tick: number, r: { billed: Map<string, number>; table: CounterTable }): void => {
    used += r.billed.get(A) ?? 0;
    table = r.table;
    new TableView(table).commit(tick);
  };
  commit(1, accountTick(table, acc, 1, [[A, 5, 1000]]));
  commit(2, accountTick(table, acc, 2, [[A, 5, 2000]]));
  accountTick(table, acc, 3, [[A, 5, 5000]]); // never committed: sluice stops with it in flight
  const marks = committedMarks(table);
  assert.equal(marks.get(A), { token: 5, down: 2000, up: 0 }, 'the committed reading, not the uncommitted one');
  // The restarted meter: its table seeded from the marks as tick 1, a new thread.
  table = seedTable([...marks], 16, 1);
  acc = new EpochAccountant();
  commit(2, accountTick(table, acc, 2, [[A, 5, 6000]]));
  assert.is(used, 5000, 'the 3,000 bytes only the uncommitted tick read, and the 1,000 since');
});

test('the table grows past its capacity and keeps every client exact; an uncommitted growth is discarded', async () => {
  const p = new PortalModel({}, { clock: { now: () => 1_795_221_800_000 } });
  const macs: string[] = [];
  for (let i = 0; i < 100; i++) {
    const mac = `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`;
    macs.push(mac);
    p.addClient(mac, `10.0.1.${i}`);
    p.auth(mac);
  }
  const h = new Harness(p);
  await h.run({ commit: false }); // grows, never adopted
  await h.run();
  for (const mac of macs) p.addTraffic(mac, 2048, 1024);
  await h.run();
  for (const mac of macs) assert.is(h.usage(mac), 3072);
  assert.ok(new TableView(h.table).slotCount === 100);
});

test('a preauthenticated client that is authed later: its counter restarts at 0 and counts from there', async () => {
  const p = new PortalModel({}, { clock: { now: () => 1_795_221_800_000 } });
  p.addClient(A, '10.0.0.10');
  const h = new Harness(p);
  await h.run();
  p.auth(A);
  p.addTraffic(A, 6 * 1024, 0);
  await h.run();
  assert.is(h.usage(A), 6 * 1024);
  const view = new TableView(h.table);
  assert.is(view.observation(0, h.tick)?.state, 'Authenticated');
});

// A usage checkpoint reads the committed halves (committedMarks) while the next pass runs in a worker.
test('once the main thread settled a committed tick, the next pass writes only pending halves', async () => {
  const p = portal();
  const h = new Harness(p);
  await h.run();
  p.addTraffic(A, 4096, 1024);
  await h.run();
  p.addTraffic(A, 8192, 0);
  p.addTraffic(B, 2048, 0);
  await h.run();
  const before = committedHalves(h.table);
  const marks = committedMarks(h.table);
  assert.equal(marks.get(A), { token: marks.get(A)!.token, down: 12288, up: 1024 });
  // The next pass, as a worker runs it while the main thread may read: the committed halves stay as they were.
  p.addTraffic(A, 1_000_000, 0);
  p.deauth(B);
  const r = await h.run({ commit: false });
  assert.ok(r.ok && r.count > 0, 'the pass read new usage');
  assert.equal(committedHalves(h.table), before);
  assert.equal(committedMarks(h.table), marks);
  // Without the settle, the pass itself moves the last committed readings into the committed halves.
  const q = portal();
  const k = new Harness(q);
  await k.run({ settle: false });
  q.addTraffic(A, 4096, 0);
  await k.run({ settle: false });
  const unsettled = committedHalves(k.table);
  q.addTraffic(A, 4096, 0);
  await k.run({ commit: false });
  assert.not.equal(committedHalves(k.table), unsettled);
  assert.equal(committedMarks(k.table).get(A)?.down, 4096);
});

test.run();
