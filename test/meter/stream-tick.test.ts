// tier: fast
// A tick read over the control socket scans its clients as they arrive (portal/scan.ts SnapshotScan): a reply that
// fails after its first clients were scanned must leave the table as if it had never been read.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EpochAccountant } from '../../src/meter/epochs.ts';
import { runUsageTask, type UsageResult } from '../../src/meter/task.ts';
import { createTable, TableView, type CounterTable } from '../../src/meter/table.ts';
import { macFromParts, SnapshotBuffer } from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/portal.ts';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const dir = mkdtempSync(join(tmpdir(), 'sluice-stream-'));

/**
 * A control socket answering each `json` with the next reply: the whole text, or its first `cut` bytes and silence,
 * or its first `pauseAt` bytes, then the rest once `paused()` has resolved.
 */
class Portal {
  readonly path = join(dir, `ndsctl-${Math.random().toString(16).slice(2)}.sock`);
  next: { text: string; cut?: number; pauseAt?: number; paused?: () => Promise<void> } = { text: '' };
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  constructor() {
    this.server = createServer((conn) => {
      this.open.add(conn);
      conn.on('close', () => this.open.delete(conn));
      conn.on('error', () => undefined);
      conn.once('data', () => {
        const { text, cut, pauseAt, paused } = this.next;
        if (pauseAt !== undefined && paused !== undefined) {
          conn.write(text.slice(0, pauseAt));
          void paused().then(() => conn.end(text.slice(pauseAt)));
        } else if (cut === undefined) conn.end(text);
        else conn.write(text.slice(0, cut)); // then hangs: the fetch times out
      });
    });
  }
  listen(): Promise<void> {
    return new Promise((res) => this.server.listen(this.path, res));
  }
  close(): Promise<void> {
    for (const conn of this.open) conn.destroy();
    return new Promise((res) => this.server.close(() => res()));
  }
}

/** The main thread's part, reduced: run a tick over the socket, commit it if it worked, sum usage per MAC. */
class Meter {
  table: CounterTable = createTable(16);
  tick = 0;
  readonly accountant = new EpochAccountant();
  readonly buffer = new SnapshotBuffer();
  readonly used = new Map<string, number>();
  constructor(readonly socket: Portal) {}
  async run(
    reply: { text: string; cut?: number; pauseAt?: number; paused?: () => Promise<void> },
    commit = true,
  ): Promise<UsageResult> {
    this.socket.next = reply;
    const r = await runUsageTask(
      {
        tick: ++this.tick,
        table: this.table,
        source: { kind: 'socket', path: this.socket.path },
        flavour: 'auto',
        timeoutMs: reply.cut === undefined ? 5000 : 300,
      },
      this.accountant,
      this.buffer,
    );
    if (r.ok && commit) {
      if (r.table) this.table = r.table;
      const view = new TableView(this.table);
      for (let k = 0; k < r.count; k++) {
        const mac = view.mac(r.deltas[k * 3]!);
        this.used.set(mac, (this.used.get(mac) ?? 0) + r.deltas[k * 3 + 1]! + r.deltas[k * 3 + 2]!);
      }
      view.commit(r.tick);
    }
    return r;
  }
}

function portal(): PortalModel {
  const p = new PortalModel({ flavour: 'opennds' }, { clock: { now: () => 1_795_221_800_000 } });
  for (const mac of [A, B]) {
    p.addClient(mac, '10.0.0.10');
    p.auth(mac);
  }
  return p;
}

const socket = new Portal();
test.before(() => socket.listen());

/** The same portal history read by two meters: `failing` also meets the failure under test, `control` never does. */
function twoMeters(p: PortalModel): { failing: Meter; control: Meter; both: (commit?: boolean) => Promise<void> } {
  const failing = new Meter(socket);
  const control = new Meter(socket);
  const both = async (commit = true): Promise<void> => {
    const text = p.renderJson();
    for (const m of [failing, control]) {
      const r = await m.run({ text }, commit);
      assert.ok(r.ok, r.ok ? '' : r.message);
    }
  };
  return { failing, control, both };
}

/** A new auth epoch for `mac`: deauthed, listed again and authed (its counters start at 0). */
function reauth(p: PortalModel, mac: string): void {
  p.deauth(mac);
  p.addClient(mac, '10.0.0.10');
  p.auth(mac);
}

/** Usage per MAC, sorted, for a readable diff. */
const rows = (used: Map<string, number>): Array<[string, number]> => [...used].sort(([a], [b]) => a.localeCompare(b));

test('a reply that fails after its first clients were scanned bills nothing twice and loses nothing', async () => {
  // `failing` also meets, twice, a reply that stops after the clients.
  const p = portal();
  const { failing, control, both } = twoMeters(p);
  await both();
  p.addTraffic(A, 10 * 1024, 1024);
  p.addTraffic(B, 4 * 1024, 0);
  await both(false); // a tick that never committed (its worker died): its reading of the old epoch is kept
  reauth(p, A);
  p.addTraffic(A, 2 * 1024, 0);
  p.addTraffic(B, 3 * 1024, 0);
  for (let k = 0; k < 2; k++) {
    // Every client whole, the envelope's closing brace never sent: both are scanned and accounted, then it times out.
    const text = p.renderJson();
    const r = await failing.run({ text, cut: text.trimEnd().length - 1 });
    assert.is(r.ok, false);
    assert.is(!r.ok && r.problem, 'timeout');
  }
  p.addTraffic(A, 1024, 0);
  p.addTraffic(B, 1024, 0);
  await both();
  assert.is(control.used.get(A), 10 * 1024 + 1024 + 3 * 1024, 'the old epoch read by the uncommitted tick, and 3 KiB');
  assert.is(control.used.get(B), 8 * 1024);
  assert.equal(rows(failing.used), rows(control.used));
});

test('a failed reply that grew the table puts back the table the main thread keeps, not only the new one', async () => {
  const p = portal();
  const { failing, control, both } = twoMeters(p);
  await both();
  p.addTraffic(A, 10 * 1024, 0);
  await both(false);
  reauth(p, A);
  p.addTraffic(A, 2 * 1024, 0);
  // Listed after A: more clients than the table (16 slots) holds, so the pass grows it after it wrote A's reading.
  for (let i = 0; i < 20; i++) p.addClient(`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`, '10.0.1.1');
  const text = p.renderJson();
  const table = failing.table;
  const r = await failing.run({ text, cut: text.trimEnd().length - 1 });
  assert.is(!r.ok && r.problem, 'timeout');
  assert.is(failing.table, table, 'the main thread keeps the table it had');
  assert.ok(failing.accountant.tableGrew, 'the failed pass grew the table');
  control.tick++;
  p.addTraffic(A, 1024, 0);
  await both();
  assert.is(control.used.get(A), 13 * 1024, 'the old epoch read by the uncommitted tick, and 3 KiB');
  assert.equal(rows(failing.used), rows(control.used));
});

/** An accountant whose `observe` throws at the client after A (a bug, or an allocation that fails, mid-pass). */
class FailingAccountant extends EpochAccountant {
  sawA = false;
  threw = false;
  override observe(hi: number, lo: number, token: number, state: number, down: number, up: number): boolean {
    if (this.sawA && !this.threw) {
      this.threw = true;
      throw new RangeError('observe failed');
    }
    this.sawA ||= macFromParts(hi, lo) === A;
    return super.observe(hi, lo, token, state, down, up);
  }
}

test('an error thrown while the clients are accounted as they arrive fails the task, the pass put back', async () => {
  const p = portal();
  const { failing, control, both } = twoMeters(p);
  await both();
  p.addTraffic(A, 10 * 1024, 0);
  p.addTraffic(B, 4 * 1024, 0);
  await both(false); // uncommitted: its readings of the old epochs are kept
  // Both re-auth (a new epoch each), A first: the portal lists them in that order.
  reauth(p, A);
  reauth(p, B);
  p.addTraffic(A, 2 * 1024, 0);
  p.addTraffic(B, 3 * 1024, 0);
  // A's reading is written, then B's throws: out of the task (a worker error), not out of the socket's read callback.
  const thrower = new FailingAccountant();
  failing.socket.next = { text: p.renderJson() };
  let error: unknown;
  try {
    await runUsageTask(
      {
        tick: ++failing.tick,
        table: failing.table,
        source: { kind: 'socket', path: socket.path },
        flavour: 'auto',
        timeoutMs: 5000,
      },
      thrower,
      failing.buffer,
    );
  } catch (err) {
    error = err;
  }
  assert.ok(thrower.threw, 'A was accounted as it arrived, then the next client threw');
  assert.instance(error, RangeError);
  control.tick++; // the same tick numbers on both
  p.addTraffic(A, 1024, 0);
  p.addTraffic(B, 1024, 0);
  await both();
  assert.is(control.used.get(A), 13 * 1024, 'the old epoch read by the uncommitted tick, and 3 KiB');
  assert.is(control.used.get(B), 8 * 1024);
  assert.equal(rows(failing.used), rows(control.used));
});

test('a streamed tick over the socket accounts exactly what the same snapshot given whole does', async () => {
  const p = new PortalModel({ flavour: 'opennds' }, { clock: { now: () => 1_795_221_800_000 } });
  const macs = Array.from(
    { length: 300 },
    (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  );
  for (const mac of macs) {
    p.addClient(mac, '10.0.0.10');
    p.auth(mac);
  }
  const streamed = new Meter(socket);
  // Clients accounted so far, read while the portal holds back the second half of each reply: streaming happened.
  let observed = 0;
  const observe = streamed.accountant.observe.bind(streamed.accountant);
  streamed.accountant.observe = (...a) => {
    observed++;
    return observe(...a);
  };
  const beforeRest: number[] = [];
  const whole = new EpochAccountant();
  let wholeTable = createTable(16);
  const wholeUsed = new Map<string, number>();
  for (let tick = 1; tick <= 4; tick++) {
    macs.forEach((mac, i) => p.addTraffic(mac, (i % 7) * 1024 * tick, (i % 3) * 1024));
    const text = p.renderJson();
    observed = 0;
    const r = await streamed.run({
      text,
      // Under 64 KiB: a read that short finds the portal slower than the reader (snapshot-fetch.ts CAUGHT_UP_BELOW).
      pauseAt: 32 * 1024,
      paused: async () => {
        // Until the reader accounted the first half (a busy machine may take longer than a fixed wait), at most 5 s.
        for (let i = 0; i < 500 && observed === 0; i++) await new Promise((res) => setTimeout(res, 10));
        beforeRest.push(observed);
      },
    });
    const w = await runUsageTask(
      { tick, table: wholeTable, source: { kind: 'inline', text }, flavour: 'auto', timeoutMs: 1000 },
      whole,
    );
    assert.ok(r.ok && w.ok);
    if (!w.ok) continue;
    if (w.table) wholeTable = w.table;
    const view = new TableView(wholeTable);
    for (let k = 0; k < w.count; k++) {
      const mac = view.mac(w.deltas[k * 3]!);
      wholeUsed.set(mac, (wholeUsed.get(mac) ?? 0) + w.deltas[k * 3 + 1]! + w.deltas[k * 3 + 2]!);
    }
    view.commit(tick);
  }
  assert.ok(
    beforeRest.length === 4 && beforeRest.every((n) => n > 0 && n < macs.length),
    `clients accounted before each reply's second half: ${beforeRest.join(', ')}`,
  );
  assert.is(streamed.used.size, macs.filter((_, i) => i % 7 !== 0 || i % 3 !== 0).length);
  assert.equal(rows(streamed.used), rows(wholeUsed));
});

test.after(async () => {
  await socket.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
