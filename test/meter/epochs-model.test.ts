// tier: fast
// The accountant's crash safety against a model (meter/epochs.ts): the same readings billed on one table whose ticks
// fail in every way a tick can (never committed, a thread dying part-way, a pass given up and re-run under the same
// tick number, a replaced or switched thread, the table grown in a tick that failed) and by one accountant per client
// whose every tick commits. Billed totals agree at every committed tick: an uncommitted tick loses and doubles nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EpochAccountant } from '../../src/meter/epochs.ts';
import { committedMarks, createTable, TableView, type CounterMark, type CounterTable } from '../../src/meter/table.ts';
import { committedHalves, sameHalves } from './table-halves.ts';
import { macToParts, STATE_CODES } from '../../src/portal/index.ts';

type Reading = { present: true; token: number; down: number; up: number } | { present: false };

/** A small deterministic generator (an LCG): each seed is one reproducible history. */
class Rng {
  constructor(private state: number) {}
  next(): number {
    this.state = (Math.imul(this.state, 1103515245) + 12345) & 0x7fffffff;
    return this.state / 0x80000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * One client's counters as a portal or the kernel shows them. It comes and goes (a portal's client comes back with a
 * new token and counters from 0; the kernel's counters go on while it is out of the list), re-auths, has its counters
 * reset under the same token, and now and then reads a little lower than it is (a glitch).
 */
class Client {
  present = false;
  token = 0;
  down = 0;
  up = 0;
  private dip = 0;
  constructor(
    readonly mac: string,
    private readonly kernel: boolean,
  ) {}
  step(rng: Rng): void {
    this.dip = 0;
    const r = rng.next();
    if (!this.present) {
      if (r < 0.3) {
        this.present = true;
        if (!this.kernel || this.token === 0 || rng.next() < 0.3) this.restart(1 + rng.int(100_000));
      }
    } else if (r < 0.08) this.present = false;
    else if (r < 0.14) this.restart(this.kernel && rng.next() < 0.3 ? 0 : 1 + rng.int(100_000));
    else if (r < 0.18) this.restart(this.token);
    else if (r < 0.24 && this.down > 100) this.dip = 1 + rng.int(Math.floor(this.down / 3));
    if ((this.present || this.kernel) && this.token !== 0) {
      if (rng.next() < 0.7) this.down += rng.int(5000);
      if (rng.next() < 0.5) this.up += rng.int(2000);
    }
  }
  private restart(token: number): void {
    this.token = token;
    this.down = 0;
    this.up = 0;
  }
  reading(): Reading {
    return this.present
      ? { present: true, token: this.token, down: this.down - this.dip, up: this.up }
      : { present: false };
  }
}

/** A worker's pass over some clients' readings (those absent are not listed). */
function observe(acc: EpochAccountant, mac: string, reading: Reading): void {
  if (!reading.present) return;
  const [hi, lo] = macToParts(mac)!;
  acc.observe(hi, lo, reading.token, STATE_CODES.Authenticated, reading.down, reading.up);
}

function begin(acc: EpochAccountant, table: CounterTable, tick: number, kernel: boolean): void {
  acc.attach(table);
  acc.beginTick(tick, !kernel);
  if (kernel) acc.continueEpochsAcrossAbsence();
}

/** One client's readings on a table of its own, every tick committed: what billing exactly once means. */
class Reference {
  private table = createTable(16);
  private view = new TableView(this.table);
  private readonly acc = new EpochAccountant();
  private tick = 0;
  billed = 0;
  constructor(
    private readonly mac: string,
    private readonly kernel: boolean,
  ) {}
  take(reading: Reading): void {
    begin(this.acc, this.table, ++this.tick, this.kernel);
    observe(this.acc, this.mac, reading);
    const r = this.acc.finish();
    if (this.acc.tableGrew) {
      this.table = this.acc.currentTable!;
      this.view = new TableView(this.table);
    }
    for (let k = 0; k < r.count; k++) this.billed += r.deltas[k * 3 + 1]! + r.deltas[k * 3 + 2]!;
    this.view.commit(this.tick);
  }
}

/** CounterMark's fields: a field it gains fails the typecheck here until sameMark compares it too. */
const MARK_FIELDS = ['token', 'down', 'up'] as const;
const everyMarkField: Exclude<keyof CounterMark, (typeof MARK_FIELDS)[number]> extends never ? true : never = true;

/** Two marks the same, field by field by name (a keyed read of each field boxed its number: most of this check). */
function sameMark(a: CounterMark, b: CounterMark): boolean {
  return everyMarkField && Object.is(a.token, b.token) && Object.is(a.down, b.down) && Object.is(a.up, b.up);
}

/** True only if two committedMarks readings are the same: a quick look, assert.equal has the last word otherwise. */
function sameMarks(a: Map<string, CounterMark>, b: Map<string, CounterMark>): boolean {
  if (a.size !== b.size) return false;
  let same = true;
  // forEach: no [key, value] pair made per entry, as an iterator makes.
  a.forEach((mark, mac) => {
    const other = b.get(mac);
    if (same && (other === undefined || !sameMark(mark, other))) same = false;
  });
  return same;
}

type Kind = 'commit' | 'uncommitted' | 'died part-way' | 'given up' | 're-run' | 're-run uncommitted';
const KINDS: Kind[] = ['commit', 'commit', 'commit', 'commit', 'uncommitted', 'died part-way', 'given up', 're-run'];

function history(seed: number, kernel: boolean): void {
  const rng = new Rng(seed);
  const clients: Client[] = [];
  for (let i = 0; i < 40; i++) clients.push(new Client(`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`, kernel));
  const refs = new Map(clients.map((c) => [c.mac, new Reference(c.mac, kernel)]));
  // A MAC's first sighting is its base (no delta), whether or not the tick that saw it committed: the reference starts
  // from the first pass that read it and was not given up. Except where that pass had to grow the table and did not
  // commit: the main thread keeps the generation it had, which holds no slot for the MAC, so it is first seen again.
  const sighted = new Set<string>();
  const inTable = (t: CounterTable, mac: string): boolean => {
    const view = new TableView(t);
    for (let slot = 0; slot < view.slotCount; slot++) if (view.mac(slot) === mac) return true;
    return false;
  };
  let table = createTable(16);
  const threads = [new EpochAccountant(), new EpochAccountant()];
  const billed = new Map<string, number>();
  const kinds: string[] = [];
  // Whether the last committed tick was settled (TableView.settle): then no pass may write a committed half, which a
  // checkpoint on the main thread may be reading (committedMarks) while the pass runs in a worker.
  let settled = true;
  for (let tick = 1; tick <= 150; tick++) {
    for (const c of clients) c.step(rng);
    const readings = new Map(clients.map((c) => [c.mac, c.reading()]));
    const order = clients.map((c) => c.mac).sort(() => rng.next() - 0.5);
    let kind = [...KINDS, 're-run uncommitted' as const][rng.int(KINDS.length + 1)]!;
    if (kernel && (kind === 'given up' || kind.startsWith('re-run'))) kind = 'uncommitted';
    kinds.push(kind);
    // Which thread runs it: one of two, or one that replaced a thread that died.
    const t = rng.int(2);
    if (rng.next() < 0.1) threads[t] = new EpochAccountant();
    const acc = threads[t]!;
    begin(acc, table, tick, kernel);
    const main = table;
    // What the pass must leave as it is, read only when it is checked (below: a settled tick's).
    const halves = settled ? committedHalves(main) : [];
    const marks = settled ? committedMarks(main) : new Map<string, CounterMark>();
    // Compared in place, and through assert.equal (its diff) only when they differ: ~10,000 checks a run.
    const untouched = (when: string): void => {
      if (!settled) return;
      const where = (): string => `seed ${seed}, ${kernel ? 'kernel' : 'portal'}, tick ${tick} (${kind}), ${when}`;
      if (!sameHalves(main, halves)) assert.equal(committedHalves(main, halves.length), halves, where());
      const current = acc.currentTable!;
      if (current !== main && !sameHalves(current, halves))
        assert.equal(committedHalves(current, halves.length), halves, where());
      const now = committedMarks(main);
      if (!sameMarks(now, marks)) assert.equal(now, marks, where());
    };
    if (kind === 'given up' || kind.startsWith('re-run')) {
      for (const mac of order.slice(0, rng.int(order.length))) observe(acc, mac, readings.get(mac)!);
      acc.resetTick();
      untouched('a pass given up');
      if (kind === 'given up') continue;
    }
    const reached = kind === 'died part-way' ? order.slice(0, rng.int(order.length)) : order;
    for (const mac of reached) observe(acc, mac, readings.get(mac)!);
    untouched('the pass');
    const commits = kind === 'commit' || kind === 're-run';
    for (const mac of reached)
      if (readings.get(mac)!.present && (commits || sighted.has(mac) || inTable(table, mac))) sighted.add(mac);
    // What the reference is told: every reading the pass took, and an absence only from a pass that finished.
    for (const mac of reached) {
      const reading = readings.get(mac)!;
      if (sighted.has(mac) && (reading.present || kind !== 'died part-way')) refs.get(mac)!.take(reading);
    }
    if (kind === 'died part-way') continue;
    const r = acc.finish();
    untouched('its end');
    if (!commits) continue;
    if (acc.tableGrew) table = acc.currentTable!;
    const view = new TableView(table);
    for (let k = 0; k < r.count; k++) {
      const mac = view.mac(r.deltas[k * 3]!);
      billed.set(mac, (billed.get(mac) ?? 0) + r.deltas[k * 3 + 1]! + r.deltas[k * 3 + 2]!);
    }
    view.commit(tick);
    // The tick loop always settles a committed tick once its apply is over; the fifth left unsettled here keeps the
    // worker's promote (epochs.ts, a safety net the loop never needs) exercised.
    settled = rng.next() < 0.8;
    if (settled) view.settle(tick);
    // Compared in place, through assert.is (and its message made) only when they differ: up to 6,000 checks a history.
    for (const c of clients) {
      const got = billed.get(c.mac) ?? 0;
      const want = refs.get(c.mac)!.billed;
      if (!Object.is(got, want))
        assert.is(
          got,
          want,
          `seed ${seed}, ${kernel ? 'kernel' : 'portal'}, ${c.mac} at tick ${tick} (${kinds.slice(-4)})`,
        );
    }
  }
}

test('portal epochs: every way a tick fails, the same totals as every tick committed', () => {
  for (let seed = 1; seed <= 12; seed++) history(seed, false);
});

test('kernel epochs: every way a tick fails, the same totals as every tick committed', () => {
  for (let seed = 1; seed <= 12; seed++) history(seed, true);
});

test.run();
