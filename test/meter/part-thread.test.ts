// tier: fast
// A pool thread scans a large reply with a second thread (meter/part-thread.ts, the worker's own module started again):
// the ticks it reads that way must bill exactly what one thread bills, a reply that fails must leave the table as if
// never read, and a thread that is gone only means one thread scans.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EpochAccountant } from '../../src/meter/epochs.ts';
import { PartThread } from '../../src/meter/part-thread.ts';
import { runUsageTask, type UsageResult } from '../../src/meter/task.ts';
import { createTable, TableView, type CounterTable } from '../../src/meter/table.ts';
import { SnapshotBuffer, type PartResult, type PortalFlavour } from '../../src/portal/index.ts';
import { findSplit } from '../../src/portal/scan-part.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { TrafficSimulator } from '../../src/sim/traffic.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-part-'));
/** From the sources the thread runs the worker's module through this shim (workers/usage.ts, partEntry). */
const ENTRY = new URL('../../workers/part-thread.cjs', import.meta.url);

/** A control socket answering each `json` with the next reply, or its first `cut` bytes and then silence. */
class Portal {
  readonly path = join(dir, 'ndsctl.sock');
  next: { text: string; cut?: number } = { text: '' };
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  constructor() {
    this.server = createServer((conn) => {
      this.open.add(conn);
      conn.on('close', () => this.open.delete(conn));
      conn.on('error', () => undefined);
      conn.once('data', () => {
        const { text, cut } = this.next;
        if (cut === undefined) conn.end(text);
        else conn.write(text.slice(0, cut));
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

/** The main thread's part, reduced: a tick over the socket, committed if it worked, usage summed per MAC. */
class Meter {
  table: CounterTable = createTable(1024);
  tick = 0;
  readonly accountant = new EpochAccountant();
  readonly used = new Map<string, number>();
  constructor(
    readonly socket: Portal,
    readonly buffer: SnapshotBuffer,
    readonly parts?: PartThread,
  ) {}
  async run(reply: { text: string; cut?: number }): Promise<UsageResult> {
    this.socket.next = reply;
    const r = await runUsageTask(
      {
        tick: ++this.tick,
        table: this.table,
        source: { kind: 'socket', path: this.socket.path },
        flavour: 'auto',
        timeoutMs: reply.cut === undefined ? 10_000 : 300,
      },
      this.accountant,
      this.buffer,
      this.parts,
    );
    if (r.ok) {
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

/** The real thread, counting the parts it answered. */
class CountingThread extends PartThread {
  answered = 0;
  override result(): PartResult | undefined {
    const part = super.result();
    if (part !== undefined) this.answered++;
    return part;
  }
}

const socket = new Portal();
test.before(() => socket.listen());
test.after(async () => {
  await socket.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What a tick says, without its timings and its deltas' buffer (compared as billed usage instead). */
const outcome = (r: UsageResult): unknown =>
  r.ok
    ? [r.clients, r.count, r.fallback, r.scanStop, r.newEpochs, r.arrivals, r.departures, r.snapshotBytes]
    : [r.problem, r.message];

test('4,000 clients: a tick scanned by two threads bills what one thread bills, tick after tick', async () => {
  // Waited for however late it is (a busy machine would otherwise have the worker scan some parts itself).
  const parts = new CountingThread(ENTRY, undefined, undefined, Infinity);
  const keep = setInterval(() => undefined, 1000);
  await parts.start();
  const split = new Meter(socket, new SnapshotBuffer(undefined, true), parts);
  const alone = new Meter(socket, new SnapshotBuffer());
  const portal = new PortalModel({ flavour: 'opennds' }, { clock: { now: () => 1_795_221_800_000 } });
  const sim = new TrafficSimulator(portal, { clients: 4000, seed: 3, resetChance: 0.02, departureChance: 0.02 });
  sim.populate();
  for (let t = 0; t < 6; t++) {
    sim.step(10_000);
    const text = portal.renderJson('opennds');
    assert.ok(text.length > 3_000_000);
    const a = await split.run({ text });
    const b = await alone.run({ text });
    assert.ok(a.ok, a.ok ? '' : a.message);
    assert.equal(outcome(a), outcome(b), `tick ${t}`);
    assert.is(a.ok && a.fallback, false);
  }
  assert.ok(parts.answered >= 5, `the second thread scanned ${parts.answered} of 6 replies`);
  assert.ok(alone.used.size > 1000);
  assert.equal([...split.used].sort(), [...alone.used].sort());

  // A reply cut off after most clients (it times out): both put back what they read, and the next tick agrees.
  sim.step(10_000);
  const text = portal.renderJson('opennds');
  for (const m of [split, alone]) assert.is((await m.run({ text, cut: text.length - 2000 })).ok, false);
  sim.step(10_000);
  const next = portal.renderJson('opennds');
  assert.equal(outcome(await split.run({ text: next })), outcome(await alone.run({ text: next })));
  assert.equal([...split.used].sort(), [...alone.used].sort());

  // A MAC listed twice, once in each half: the scan stops and JSON.parse's fallback refuses it, as with one thread.
  const first = /"([0-9a-f:]{17})":\{/.exec(next)![1]!;
  const lastKey = [...next.matchAll(/"([0-9a-f:]{17})":\{/g)].at(-1)![1]!;
  const doubled = next.replace(`"${lastKey}":{`, `"${first}":{`);
  const before = parts.answered;
  const a = await split.run({ text: doubled });
  const b = await alone.run({ text: doubled });
  assert.equal(outcome(a), outcome(b));
  assert.is(a.ok, false);
  assert.is(parts.answered, before + 1, 'the second part was read, and its doubled MAC caught');

  // A reply the scan stops in before the split (a value outside the subset in its first client): the part is dropped
  // (waited for, as the next reply is read into the same buffer), JSON.parse reads the reply, and the next reply is
  // split again.
  const odd = next.replace(/"custom":"[^"]*"/, '"custom":1e3');
  assert.equal(outcome(await split.run({ text: odd })), outcome(await alone.run({ text: odd })));
  assert.is(parts.answered, before + 1, 'the dropped part is not merged');
  sim.step(10_000);
  const after = portal.renderJson('opennds');
  assert.equal(outcome(await split.run({ text: after })), outcome(await alone.run({ text: after })));
  assert.is(parts.answered, before + 2, 'the thread took the next reply');

  // The thread gone: the next reply is scanned by one thread, then the thread starts again.
  parts.stop();
  sim.step(10_000);
  const later = portal.renderJson('opennds');
  assert.equal(outcome(await split.run({ text: later })), outcome(await alone.run({ text: later })));
  assert.is(parts.answered, before + 2);
  await parts.start();
  parts.stop();
  clearInterval(keep);
  assert.equal([...split.used].sort(), [...alone.used].sort());
});

/** The bytes in a SharedArrayBuffer, then `after` (a sentinel quote, as the snapshot buffer holds a reply, or not). */
function shared(text: string, after = '"'): Buffer {
  const bytes = Buffer.from(text + after);
  const buf = Buffer.from(new SharedArrayBuffer(bytes.length));
  buf.set(bytes);
  return buf.subarray(0, bytes.length - after.length);
}

/** The thread this one runs now (private: only to see it end). */
const threadOf = (parts: PartThread): Worker | undefined => (parts as unknown as { worker?: Worker }).worker;

const THREE = readFileSync(new URL('../fixtures/ndsctl/opennds-9.10-all-3-clients.json', import.meta.url)).toString();

/** Hands the part after the first boundary of `buf` over and waits for its answer. */
function part(parts: PartThread, buf: Buffer, flavour: PortalFlavour = 'opennds'): PartResult | undefined | false {
  const at = findSplit(buf, 0, buf.length);
  if (!parts.begin(buf, 0, at, buf.length, flavour)) return false;
  return parts.result();
}

test('a thread that cannot be started: begin() says no, and the reply is scanned by one thread', async () => {
  // A Worker can throw as it is made (no thread to be had: ERR_WORKER_INIT_FAILED); a URL it refuses does the same.
  const parts = new PartThread(new URL('http://localhost/part-thread.mjs'));
  assert.is(part(parts, shared(THREE)), false);
  await parts.start();
  const portal = new PortalModel({ flavour: 'opennds' }, { clock: { now: () => 1_795_221_800_000 } });
  const sim = new TrafficSimulator(portal, { clients: 2600, seed: 7 });
  sim.populate();
  sim.step(10_000);
  const text = portal.renderJson('opennds');
  const split = new Meter(socket, new SnapshotBuffer(undefined, true), parts);
  const alone = new Meter(socket, new SnapshotBuffer());
  const a = await split.run({ text });
  assert.ok(a.ok, a.ok ? '' : a.message);
  assert.equal(outcome(a), outcome(await alone.run({ text })));
  parts.stop();
});

test('a part the thread cannot scan comes back as no answer; the thread serves the next one', async () => {
  const parts = new PartThread(ENTRY, undefined, undefined, Infinity);
  await parts.start();
  const buf = shared(THREE);
  assert.is(part(parts, buf, 'bogus' as PortalFlavour), undefined);
  const ok = part(parts, buf);
  assert.ok(ok !== false && ok !== undefined && ok.count === 2 && ok.stop === undefined);
  parts.stop();
});

test('a thread that hangs on a part is ended after the wait, and a new one serves the next part', async () => {
  const parts = new PartThread(ENTRY, 30_000, 200, Infinity);
  await parts.start();
  // No sentinel quote after a string that never ends: the thread's scan runs on (as it would over a buffer read
  // into again); only its end stops it.
  const open = THREE.slice(0, THREE.lastIndexOf('"token":"') + 12);
  const hung = threadOf(parts)!;
  const ended = once(hung, 'exit');
  assert.is(part(parts, shared(open, 'x')), undefined);
  await ended;
  assert.is(part(parts, shared(THREE)), false, 'the next reply is scanned by one thread while one starts');
  await parts.start();
  assert.is((part(parts, shared(THREE)) as PartResult).count, 2);
  parts.stop();
});

test('a thread that dies with a part is not waited for past the wait, and nothing is thrown', async () => {
  const parts = new PartThread(ENTRY, 30_000, 200, Infinity);
  await parts.start();
  const buf = shared(THREE);
  const at = findSplit(buf, 0, buf.length);
  const thread = threadOf(parts)!;
  assert.ok(parts.begin(buf, 0, at, buf.length, 'opennds'));
  await thread.terminate();
  assert.is(parts.result(), undefined);
  await parts.start();
  assert.is((part(parts, buf) as PartResult).count, 2);
  parts.stop();
});

test('a reply under the minimum never starts the thread', async () => {
  const parts = new PartThread(ENTRY);
  const portal = new PortalModel({ flavour: 'opennds' }, { clock: { now: () => 1_795_221_800_000 } });
  const sim = new TrafficSimulator(portal, { clients: 1500, seed: 9 });
  sim.populate();
  sim.step(10_000);
  const text = portal.renderJson('opennds');
  assert.ok(text.length > 1_000_000 && text.length < parts.minBytes);
  const r = await new Meter(socket, new SnapshotBuffer(undefined, true), parts).run({ text });
  assert.ok(r.ok && !r.fallback);
  assert.is(threadOf(parts), undefined);
});

test('the thread ends after its idle time without a part; the next large reply starts one', async () => {
  const parts = new PartThread(ENTRY, 100, undefined, Infinity);
  await parts.start();
  const buf = shared(THREE);
  assert.is((part(parts, buf) as PartResult).count, 2);
  await once(threadOf(parts)!, 'exit');
  assert.is(threadOf(parts), undefined);
  assert.is(part(parts, buf), false, 'the next reply is scanned by one thread while one starts');
  parts.stop();
});

test.run();
