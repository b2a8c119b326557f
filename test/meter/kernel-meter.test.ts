// tier: fast
// The Meter on the kernel's counters (meter/kernel-mode.ts): usage read from a counter dump (nft's JSON, printed by a
// real `cat` as the worker's nft command), the portal (a simulated openNDS behind a real ndsctl.sock server) listed
// only when something changed: at the start, after sluice's own auths and deauths, a restarted portal, never every
// tick; a listing that fails leaves the kept roster billing; a table gone is made again; the roster named to the
// thread by key once it holds it, and sent again to a thread that does not (a switch of thread, a replaced one, a
// roster changed on the main thread). Fake time for the meter.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createInlineRunner,
  Meter,
  sessionManagerPort,
  type UsageReport,
  type UsageTaskRunner,
} from '../../src/meter/index.ts';
import type { ExclusivePort, GateFacts, KernelCountersPort, PortalDeauthsPort } from '../../src/meter/ports.ts';
import { Emitter, SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { parseCounterTable, sharedCommandShell, type KernelReading } from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler, type NdsctlSocketServer } from '../../src/sim/socket.ts';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const MiB = 1024 * 1024;

// The kernel task reads the counters through a long-lived shell (src/portal/command-shell.ts): it ends with the file.
test.after(() => sharedCommandShell('counters').close());

/** sluice_count as nft 1.0.6 prints it, from what the test says passed: a file `cat` prints for the worker. */
class DumpCounters implements KernelCountersPort {
  enabled = true;
  changes = 0;
  rebuilds: string[] = [];
  private handle = 10;
  readonly clients = new Map<string, { h: number; down: number; up: number; ip: string }>();
  constructor(readonly path: string) {
    this.write();
  }
  get dumpArgv(): string[] {
    return ['cat', this.path];
  }
  has(mac: string): boolean {
    return this.clients.has(mac);
  }
  async count(mac: string): Promise<void> {
    this.clients.set(mac, { h: (this.handle += 2), down: 0, up: 0, ip: mac });
    this.write();
  }
  async uncount(mac: string): Promise<void> {
    this.clients.delete(mac);
    this.write();
  }
  async rebuild(reason: string): Promise<void> {
    this.changes++;
    this.rebuilds.push(reason);
    this.write();
  }
  add(mac: string, down: number): void {
    this.clients.get(mac)!.down += down;
    this.write();
  }
  gone(): void {
    writeFileSync(this.path, 'Error: No such file or directory\n');
  }
  write(): void {
    const hex = (mac: string): string => mac.replace(/:/g, '');
    const cs = [...this.clients];
    writeFileSync(
      this.path,
      JSON.stringify({
        nftables: [
          { metainfo: { version: '1.0.6', json_schema_version: 1 } },
          { table: { family: 'netdev', name: 'sluice_count', handle: 5 } },
          ...cs.flatMap(([mac, c]) => [
            {
              counter: {
                family: 'netdev',
                name: `cu_${hex(mac)}`,
                table: 'sluice_count',
                handle: c.h,
                packets: 1,
                bytes: c.up,
              },
            },
            {
              counter: {
                family: 'netdev',
                name: `cd_${hex(mac)}`,
                table: 'sluice_count',
                handle: c.h + 1,
                packets: 0,
                bytes: c.down,
              },
            },
          ]),
          {
            map: {
              family: 'netdev',
              name: 'cup',
              table: 'sluice_count',
              type: 'ipv4_addr',
              handle: 8,
              map: 'counter',
              elem: cs.map(([mac, c]) => [c.ip, `cu_${hex(mac)}`]),
            },
          },
          {
            map: {
              family: 'netdev',
              name: 'cdown',
              table: 'sluice_count',
              type: 'ipv4_addr',
              handle: 9,
              map: 'counter',
              elem: cs.map(([mac, c]) => [c.ip, `cd_${hex(mac)}`]),
            },
          },
          { chain: { family: 'netdev', table: 'sluice_count', name: 'count', handle: 1 } },
        ],
      }),
    );
  }
}

interface Rig {
  portal: PortalModel;
  counters: DumpCounters;
  meter: Meter;
  manager: SessionManager;
  server: NdsctlSocketServer;
  now: { t: number };
  usage: UsageReport[][];
  identity: { id: string };
  /** The gate's facts as the meter follows them (Gatekeeper's events). */
  gate: Emitter<GateFacts>;
  listings(): number;
  billed(mac: string): number;
  buy(mac: string, bytes: number): Promise<void>;
  step(ms?: number): Promise<ReturnType<Meter['tick']> extends Promise<infer R> ? R : never>;
  /** Another meter on the same counters and sessions, from the marks the first committed (a daemon restart). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `valve`: the portal queue as the meter sees it (its listings' tokens handed to noteListing). `runner`: the threads
 * (default: one inline runner, a thread that lives as long as the meter).
 */
async function rig(
  valve?: ExclusivePort,
  runner?: () => UsageTaskRunner,
  neighbours?: () => Promise<string | null>,
  portalDeauths?: PortalDeauthsPort,
  /** The sessions as the meter sees them, changed (a hook into its reads). */
  wrapSessions?: (port: ReturnType<typeof sessionManagerPort>) => ReturnType<typeof sessionManagerPort>,
): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-kmeter-'));
  const now = { t: 1_795_221_800_000 };
  const portal = new PortalModel({ flavour: 'opennds' }, { clock: { now: () => now.t } });
  let listings = 0;
  const handle = portalRequestHandler(portal);
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), (line) => {
    if (line.trim() === 'json') listings++;
    return handle(line);
  });
  const manager = await SessionManager.open({ store: new MemoryStore(), clock: { now: () => now.t } });
  const counters = new DumpCounters(join(dir, 'dump.json'));
  const usage: UsageReport[][] = [];
  manager.on('usage', (b) => usage.push([...b]));
  const identity = { id: '8:100' };
  const gate = new Emitter<GateFacts>((err) => {
    throw err;
  });
  const newMeter = (initialMarks?: ReturnType<Meter['marks']>): Meter => {
    const meter = new Meter({
      source: { kind: 'socket', path: server.path },
      pollIntervalMs: 2000,
      sessions: wrapSessions ? wrapSessions(sessionManagerPort(manager)) : sessionManagerPort(manager),
      runner: runner?.() ?? createInlineRunner(),
      clock: { now: () => now.t },
      kernelCounters: counters,
      portalIdentity: () => identity.id,
      ...(neighbours && { neighbours }),
      ...(portalDeauths && { portalDeauths }),
      gate: { on: (event, listener) => gate.on(event, listener) },
      ...(valve && { portal: valve }),
      ...(initialMarks && { initialMarks: [...initialMarks] }),
    });
    return meter;
  };
  let meter = newMeter();
  const r: Rig = {
    portal,
    counters,
    meter,
    manager,
    server,
    now,
    usage,
    identity,
    gate,
    listings: () => listings,
    billed: (mac) =>
      usage
        .flat()
        .filter((u) => u.mac === mac)
        .reduce((n, u) => n + u.deltaBytes, 0),
    async buy(mac, bytes) {
      const { session } = await manager.activate({
        mac,
        metric: 'bytes',
        allotment: BigInt(bytes),
        payment: { method: 'grant', reference: mac, amount: 1n, asset: 'X', at: now.t },
      });
      // As the valve does it: fresh counters, then the auth.
      meter.authStarting(mac, session.id);
      await counters.count(mac);
      portal.auth(mac);
      meter.authFinished(mac, session.id, 'opened');
      meter.sessionStarted(mac);
    },
    async step(ms = 2000) {
      now.t += ms;
      return r.meter.tick();
    },
    async restart() {
      const marks = r.meter.marks();
      await r.meter.close();
      r.meter = meter = newMeter(marks);
    },
    async close() {
      await r.meter.close();
      await manager.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return r;
}

test("each listing's tokens reach the valve (the gate's calls by token), and only a listing's", async () => {
  const noted: Array<[string[], string, number]> = [];
  const r = await rig({
    runExclusive: (fn) => fn(),
    noteListing: (pairs, flavour, tookMs) => noted.push([[...pairs], flavour, tookMs]),
  });
  try {
    r.portal.addClient(A, '10.0.0.10');
    r.portal.addClient(B, '10.0.0.11');
    await r.step();
    assert.equal(
      noted.map(([pairs, flavour]) => [pairs, flavour]),
      [[[A, r.portal.get(A)!.token, B, r.portal.get(B)!.token], 'opennds']],
    );
    assert.ok(noted[0]![2] >= 0, "the listing's duration");
    await r.step();
    assert.is(noted.length, 1, 'a tick without a listing hands nothing');
  } finally {
    await r.close();
  }
});

test(
  "usage from the kernel's counters: the portal listed at the start, not every tick nor after a purchase; every " +
    'byte the kernel counted billed once',
  async () => {
    const r = await rig();
    try {
      r.portal.addClient(A, '10.0.0.10');
      r.portal.addClient(B, '10.0.0.11');
      await r.step();
      assert.is(r.listings(), 1, 'the first tick lists the portal');
      await r.buy(A, 100 * MiB);
      let report = await r.step();
      assert.is(r.listings(), 1, "a purchase is not listed for: its auth's outcome is the roster's");
      assert.ok(report.ok);
      for (let i = 0; i < 10; i++) {
        r.counters.add(A, MiB);
        // The portal's own counters say something else: the kernel's are the usage.
        r.portal.addTraffic(A, 7 * MiB, 0);
        report = await r.step();
        assert.ok(report.ok, report.message);
      }
      assert.is(r.listings(), 1, 'ten ticks with traffic: no listing');
      assert.is(r.billed(A), 10 * MiB);
      assert.equal(r.meter.stats().usage_from, 'kernel');
      assert.is(r.meter.stats().portal_listings, 1);

      await r.buy(B, 100 * MiB);
      r.counters.add(B, 3 * MiB);
      r.counters.add(A, MiB);
      await r.step();
      assert.is(r.listings(), 1);
      assert.is(r.billed(B), 3 * MiB, 'a gate sluice opened: billed from its first byte');
      // A close the gate could not confirm by a look at its client is listed for.
      await r.counters.uncount(B);
      r.portal.deauth(B);
      r.gate.emit('closed', B, undefined);
      await r.step();
      assert.is(r.listings(), 2);
      assert.equal(r.meter.stats().portal_listings_by_reason, { first: 1, changed: 1 }, 'what asked for each listing');
      assert.is(r.billed(A), 11 * MiB);
    } finally {
      await r.close();
    }
  },
);

test('a paying client on an address no listing showed (a new lease) is listed for at once, once', async () => {
  const arp = (...entries: Array<[ip: string, mac: string]>): string =>
    'IP address       HW type     Flags       HW address            Mask     Device\n' +
    entries.map(([ip, mac]) => `${ip.padEnd(17)}0x1         0x2         ${mac}     *        br-lan\n`).join('');
  let table = arp(['10.0.0.10', A], ['10.0.0.11', B]);
  const r = await rig(undefined, undefined, async () => table);
  try {
    r.portal.addClient(A, '10.0.0.10');
    r.portal.addClient(B, '10.0.0.11');
    await r.step();
    await r.buy(A, 100 * MiB);
    for (let i = 0; i < 5; i++) {
      r.counters.add(A, MiB);
      await r.step();
    }
    assert.is(r.listings(), 1, 'the addresses the listing showed are no news');
    // A took a new lease: the old entry lingers, the new one is resolved. B (not paying) moves too: not sluice's.
    table = arp(['10.0.0.10', A], ['10.0.0.20', A], ['10.0.0.21', B]);
    for (let i = 0; i < 3; i++) {
      r.counters.add(A, 1000);
      await r.step();
    }
    assert.ok(r.listings() >= 2, `listed for the new address within 6 s (${r.listings()})`);
    for (let i = 0; i < 10; i++) {
      r.counters.add(A, 1000);
      await r.step();
    }
    assert.is(r.listings(), 4, 'that listing and its two follow-ups, no more in 20 s');
  } finally {
    await r.close();
  }
});

test('a close confirmed by a look at its one client is not listed for; the roster has it closed', async () => {
  const r = await rig();
  const C = '02:00:00:00:00:0c';
  try {
    for (const [mac, ip] of [
      [A, '10.0.0.10'],
      [B, '10.0.0.11'],
      [C, '10.0.0.12'],
    ] as const)
      r.portal.addClient(mac, ip);
    await r.step();
    for (const mac of [A, B, C]) await r.buy(mac, 100 * MiB);
    for (const mac of [A, B, C]) r.counters.add(mac, MiB);
    await r.step();
    assert.is(r.listings(), 1);
    // B's and C's sessions end; the gate deauths each, then `json <mac>` finds it Preauthenticated (openNDS 10) or
    // not at all (openNDS 9.10).
    for (const [mac, state] of [
      [B, 'Preauthenticated'],
      [C, null],
    ] as const) {
      await r.manager.end(r.manager.byMac(mac)!.id, 'admin');
      await r.counters.uncount(mac);
      r.portal.deauth(mac);
      r.gate.emit('closed', mac, state);
      r.counters.add(A, MiB);
      const report = await r.step();
      assert.ok(report.ok, report.message);
      assert.is(r.listings(), 1, 'no listing of every client after a deauth');
      assert.equal(report.openUnpaid, [], 'the roster has the gate closed: nothing to close again');
      assert.equal(report.gone, []);
    }
    assert.is(r.billed(A), 3 * MiB);
    // A look that found the gate still open is the listing's to judge.
    await r.manager.end(r.manager.byMac(A)!.id, 'admin');
    r.gate.emit('closed', A, 'Authenticated');
    await r.step();
    assert.is(r.listings(), 2);
  } finally {
    await r.close();
  }
});

test('a tick that reads the fresh counters of a gate being opened (its auth in flight) does not list', async () => {
  const r = await rig();
  try {
    await r.step();
    assert.is(r.listings(), 1);
    // Clients the first listing did not show (they came after it).
    r.portal.addClient(A, '10.0.0.10');
    r.portal.addClient(B, '10.0.0.11');
    const payment = { method: 'grant', reference: A, amount: 1n, asset: 'X', at: r.now.t };
    const { session } = await r.manager.activate({ mac: A, metric: 'bytes', allotment: BigInt(100 * MiB), payment });
    // As the valve does it, with ticks in between: fresh counters, the auth slow to answer.
    r.meter.authStarting(A, session.id);
    await r.counters.count(A);
    r.counters.add(A, 1000);
    await r.step();
    await r.step();
    assert.is(r.listings(), 1, 'counters of an auth in flight are not unlisted ones');
    r.portal.auth(A);
    r.meter.authFinished(A, session.id, 'opened');
    await r.step();
    await r.step();
    assert.is(r.listings(), 1, 'nor after it: the auth wrote the roster');
    assert.is(r.billed(A), 1000, 'billed from its first byte');
    // Counters nobody is opening and no listing showed (left by a failed auth): listed for, once.
    await r.counters.count(B);
    await r.step();
    await r.step();
    assert.is(r.listings(), 2);
    await r.step();
    await r.step();
    assert.is(r.listings(), 2);
  } finally {
    await r.close();
  }
});

// The tick billed the reading of a closed gate as bought and the first-reading watch billed it
// again (2000 for 1000); the watch alone owns a gate's readings until its first open one is billed.
test('listed Preauthenticated, fresh counters read while its auth is in flight: each byte billed once', async () => {
  const r = await rig();
  try {
    // Listed by the first tick, Preauthenticated: the roster holds it with its gate closed.
    r.portal.addClient(A, '10.0.0.10');
    await r.step();
    assert.is(r.listings(), 1);
    const payment = { method: 'grant', reference: A, amount: 1n, asset: 'X', at: r.now.t };
    const { session } = await r.manager.activate({ mac: A, metric: 'bytes', allotment: BigInt(100 * MiB), payment });
    // As the valve does it: fresh counters, then the auth, slow to answer: a tick reads the counters meanwhile.
    r.meter.authStarting(A, session.id);
    await r.counters.count(A);
    r.counters.add(A, 1000);
    await r.step();
    r.portal.auth(A);
    r.meter.authFinished(A, session.id, 'opened');
    await r.step();
    assert.is(r.billed(A), 1000, "the bytes the auth's fresh counters counted, once");
    r.counters.add(A, 500);
    await r.step();
    await r.step();
    assert.is(r.billed(A), 1500, 'and every byte after them, once');
  } finally {
    await r.close();
  }
});

/**
 * A listed client pays and is read moving, then the portal deauths it (back Preauthenticated, as openNDS lists it once
 * it shows up again): the listings read before the deauth.
 */
async function payingThenDeauthed(r: Rig): Promise<number> {
  r.portal.addClient(A, '10.0.0.10');
  await r.step();
  await r.buy(A, 100 * MiB);
  await r.step();
  r.counters.add(A, MiB);
  assert.equal((await r.step()).reopen, []);
  const before = r.listings();
  r.portal.deauth(A);
  if (r.portal.get(A) === undefined) r.portal.addClient(A, '10.0.0.10');
  return before;
}

test(
  'a restarted portal (a new control socket) is listed: ' + 'the paying client it forgot is reported for re-opening',
  async () => {
    const r = await rig();
    try {
      const before = await payingThenDeauthed(r);
      r.identity.id = '8:177';
      const report = await r.step(6000);
      assert.is(r.listings(), before + 1);
      assert.equal(report.reopen, [A]);
    } finally {
      await r.close();
    }
  },
);

test('a deauth the portal reports (its BinAuth): its paying client reported for re-opening, no listing', async () => {
  let heard: ((mac: string) => void) | undefined;
  const deauths = { liveSince: 0, deauths: 0, onDeauth: (l: (mac: string) => void) => void (heard = l) };
  const r = await rig(undefined, undefined, undefined, deauths);
  try {
    // openNDS timed the client out (idle_deauth): its BinAuth emptied the record, and the watch told the meter.
    const before = await payingThenDeauthed(r);
    const needs: string[] = [];
    r.meter.on('paying-client-needs-gate', (mac) => needs.push(mac));
    heard!(A);
    assert.equal(needs, [A], 'reported for re-opening');
    await r.step();
    assert.is(r.listings(), before, 'no listing: the report said it');
  } finally {
    await r.close();
  }
});

test('a listing that fails leaves the kept roster billing; counters flushed behind sluice are made again', async () => {
  const r = await rig();
  try {
    r.portal.addClient(A, '10.0.0.10');
    await r.step();
    await r.buy(A, 100 * MiB);
    await r.step();
    r.portal.running = false;
    r.counters.changes++; // something to list for
    r.counters.add(A, 2 * MiB);
    const report = await r.step();
    assert.ok(report.ok, 'the kernel still counts while the portal does not answer');
    assert.is(r.billed(A), 2 * MiB);
    r.counters.gone();
    const skipped = await r.step();
    assert.is(skipped.skipped, 'counters-unreadable');
    assert.is(r.counters.rebuilds.length, 1);
  } finally {
    await r.close();
  }
});

test(
  "a restart continues the counters' epochs from the " + 'marks: what passed while sluice was down is billed once',
  async () => {
    const r = await rig();
    try {
      r.portal.addClient(A, '10.0.0.10');
      await r.step();
      await r.buy(A, 100 * MiB);
      await r.step();
      r.counters.add(A, MiB);
      await r.step();
      assert.is(r.billed(A), MiB);
      await r.restart();
      r.counters.add(A, 2 * MiB);
      const report = await r.step();
      assert.ok(report.ok, report.message);
      assert.is(r.billed(A), 3 * MiB);
    } finally {
      await r.close();
    }
  },
);

test(
  'a client the portal stops listing for a while (its restart) and lists again on the same counters: not a new ' +
    'epoch, nothing billed twice',
  async () => {
    const r = await rig();
    try {
      r.portal.addClient(A, '10.0.0.10');
      await r.step();
      await r.buy(A, 100 * MiB);
      await r.step();
      r.counters.add(A, 2 * MiB);
      await r.step();
      assert.is(r.billed(A), 2 * MiB);
      // openNDS restarting: listed with nobody, then the client back, Preauthenticated (9.x fails open meanwhile).
      r.portal.deauth(A);
      r.portal.remove(A);
      r.identity.id = '8:200';
      await r.step();
      r.counters.add(A, MiB);
      r.portal.addClient(A, '10.0.0.10');
      r.identity.id = '8:201';
      await r.step();
      assert.is(
        r.billed(A),
        3 * MiB,
        'the megabyte that passed while it was not listed, once; the 2 MiB before, not again',
      );
    } finally {
      await r.close();
    }
  },
);

/** Runners standing for threads, each with its own kept roster; what each kernel task named and what came of it. */
class Threads {
  readonly log: string[] = [];
  private readonly threads = new Map<string, UsageTaskRunner>();
  current = 'T1';
  /** Run, one per listing task, after the thread read it and before its result reaches the meter. */
  readonly afterListing: Array<() => Promise<void>> = [];
  /** Run, one per listing task, after the tick was dispatched and before the thread reads the listing. */
  readonly beforeListing: Array<() => Promise<void>> = [];
  /** The runner the meter holds: each task goes to the `current` thread (a new runner for a name not seen yet). */
  readonly runner: UsageTaskRunner = {
    run: () => Promise.reject(new Error('a kernel meter runs kernel tasks')),
    runKernel: async (task) => {
      const name = this.current;
      const thread = this.threads.get(name) ?? this.threads.set(name, createInlineRunner()).get(name)!;
      await (task.listing ? this.beforeListing.shift() : undefined)?.();
      const result = await thread.runKernel!(task);
      // What happens on the main thread while the tick is still running, once it read the listing (the portal's
      // queue is free again): an auth that goes through then.
      const late = task.listing ? this.afterListing.shift() : undefined;
      await late?.();
      const sent = task.listing ? 'listing' : task.roster?.entries ? 'roster' : 'key';
      this.log.push(`${name} ${sent} ${result.ok ? 'ok' : result.problem}`);
      return result;
    },
    close: async () => {},
    destroy: async () => {},
  };
  /** The current thread dies and another takes its name (Piscina's replacement): it holds no roster. */
  replace(): void {
    this.threads.delete(this.current);
  }
  take(): string[] {
    return this.log.splice(0);
  }
}

test(
  'the roster by key while the thread holds it; sent again to another thread, and after a purchase changed it; ' +
    'billing exact',
  async () => {
    const threads = new Threads();
    const r = await rig(undefined, () => threads.runner);
    try {
      r.portal.addClient(A, '10.0.0.10');
      r.portal.addClient(B, '10.0.0.11');
      await r.step();
      await r.step();
      assert.equal(threads.take(), ['T1 listing ok', 'T1 key ok'], "the listing's roster stays on its thread");
      await r.buy(A, 100 * MiB);
      r.counters.add(A, MiB);
      await r.step();
      r.counters.add(A, MiB);
      await r.step();
      assert.equal(threads.take(), ['T1 roster ok', 'T1 key ok'], 'the auth changed the roster: sent once');
      // The tick goes to another thread (the adaptive runner between the main thread and the pool, or a second one).
      threads.current = 'T2';
      r.counters.add(A, MiB);
      await r.step();
      r.counters.add(A, MiB);
      await r.step();
      assert.equal(threads.take(), ['T2 key roster-unknown', 'T2 roster ok', 'T2 key ok']);
      await r.buy(B, 100 * MiB);
      r.counters.add(B, 2 * MiB);
      await r.step();
      // Back to the first thread: it holds an older roster (A's auth, not B's), never used for this one.
      threads.current = 'T1';
      r.counters.add(A, MiB);
      r.counters.add(B, MiB);
      await r.step();
      r.counters.add(B, MiB);
      await r.step();
      assert.equal(threads.take(), ['T2 roster ok', 'T1 key roster-unknown', 'T1 roster ok', 'T1 key ok']);
      assert.is(r.listings(), 1);
      assert.is(r.billed(A), 5 * MiB);
      assert.is(r.billed(B), 4 * MiB);
    } finally {
      await r.close();
    }
  },
);

test(
  'what the counters counted past the reading a session is billed through (a quota table made again takes it ' +
    'off): the last committed reading, or while a tick is billed, the one before',
  async () => {
    /** Set to run once inside the meter's next walk of the sessions: after its tick committed, before it billed. */
    let inWalk: (() => void) | undefined;
    const r = await rig(undefined, undefined, undefined, undefined, (port) => ({
      ...port,
      *activeSessions() {
        const hook = inWalk;
        inWalk = undefined;
        hook?.();
        yield* port.activeSessions();
      },
    }));
    const read = (): KernelReading[] => parseCounterTable(readFileSync(r.counters.path)).readings;
    const leftOf = (mac: string): number => Number(r.manager.remaining(r.manager.byMac(mac)!.id));
    try {
      r.portal.addClient(A, '10.0.0.10');
      await r.step();
      await r.buy(A, 100 * MiB);
      r.counters.add(A, 2 * MiB);
      await r.step();
      assert.is(r.billed(A), 2 * MiB);
      r.counters.add(A, MiB);
      assert.equal(r.meter.sinceBilled()!(read()), new Map([[A, MiB]]), 'passed since the reading billed');
      assert.is(leftOf(A) - MiB, 97 * MiB);
      // The next tick reads that megabyte; asked between its commit and its billing, the marks are the reading
      // before it, which the bytes left still pair with.
      let during: { left: number; since: ReturnType<Meter['sinceBilled']> } | undefined;
      inWalk = () => {
        during = { left: leftOf(A), since: r.meter.sinceBilled() };
      };
      await r.buy(B, MiB); // a session started: the meter's index walks the sessions again
      await r.step();
      assert.ok(during, 'asked inside the tick');
      assert.is(r.billed(A), 3 * MiB);
      assert.is(during.left - during.since!(read()).get(A)!, 97 * MiB, 'what A has left, neither side ahead');
      assert.equal(
        r.meter.sinceBilled()!(read()),
        new Map([
          [A, 0],
          [B, 0],
        ]),
      );
    } finally {
      await r.close();
    }
  },
);

test('a replaced thread (the old one died) is sent the roster; a failed listing on it still bills', async () => {
  const threads = new Threads();
  const r = await rig(undefined, () => threads.runner);
  try {
    r.portal.addClient(A, '10.0.0.10');
    await r.step();
    await r.buy(A, 100 * MiB);
    await r.step();
    r.counters.add(A, MiB);
    await r.step();
    threads.take();
    threads.replace();
    r.counters.add(A, MiB);
    await r.step();
    assert.equal(threads.take(), ['T1 key roster-unknown', 'T1 roster ok']);
    // Replaced again, on a tick that lists and whose listing fails: the roster sent stands in for it.
    threads.replace();
    r.portal.running = false;
    r.counters.changes++;
    r.counters.add(A, MiB);
    const report = await r.step();
    assert.ok(report.ok, report.message);
    assert.equal(threads.take(), ['T1 listing roster-unknown', 'T1 listing ok']);
    r.portal.running = true;
    r.counters.add(A, MiB);
    await r.step();
    r.counters.add(A, MiB);
    await r.step();
    assert.equal(threads.take(), ['T1 listing ok', 'T1 key ok'], "the listing's roster, kept on that thread");
    assert.is(r.billed(A), 5 * MiB);
  } finally {
    await r.close();
  }
});

// A listing read before an auth of sluice's whose outcome (opened()) reaches the roster while the tick is in flight:
// the listing's roster, which shows the gate closed, must not replace the one opened() wrote.
test(
  'an auth that succeeds while a listing read before it is in flight: the roster keeps the gate open; every byte ' +
    'billed once from the first reading, no re-open asked for',
  async () => {
    const threads = new Threads();
    const r = await rig(undefined, () => threads.runner);
    try {
      r.portal.addClient(A, '10.0.0.10');
      r.portal.addClient(B, '10.0.0.11');
      await r.step();
      assert.is(r.listings(), 1);
      const payment = { method: 'grant', reference: A, amount: 1n, asset: 'X', at: r.now.t };
      const { session } = await r.manager.activate({ mac: A, metric: 'bytes', allotment: BigInt(100 * MiB), payment });
      // As the valve does it: fresh counters first; the auth waits in the portal's queue behind the listing.
      r.meter.authStarting(A, session.id);
      await r.counters.count(A);
      r.counters.add(A, 1000);
      r.counters.changes++; // a reason to list (another client's deauth)
      const auths: string[] = [];
      threads.afterListing.push(async () => {
        auths.push(A);
        r.portal.auth(A);
        r.meter.authFinished(A, session.id, 'opened');
        r.meter.sessionStarted(A);
      });
      const reports = [await r.step()];
      assert.is(r.listings(), 2, 'the tick read the listing');
      assert.equal(auths, [A], 'the auth went through while that tick was in flight');
      assert.is(r.portal.get(A)!.state, 'Authenticated');
      for (let i = 0; i < 5; i++) {
        r.counters.add(A, MiB);
        reports.push(await r.step());
      }
      assert.is(r.listings(), 2, 'no listing since: the roster holds the auth');
      assert.is(r.billed(A), 1000 + 5 * MiB, "the fresh counters' bytes in full, then every byte once, as they pass");
      assert.equal(
        reports.flatMap((rep) => rep.reopen),
        [],
        'a gate sluice opened is not reported for re-opening',
      );
      assert.equal(
        reports.flatMap((rep) => rep.openUnpaid),
        [],
      );
    } finally {
      await r.close();
    }
  },
);

test('the same with the first listing in flight (no roster yet): its roster keeps the gate open', async () => {
  const threads = new Threads();
  const r = await rig(undefined, () => threads.runner);
  try {
    r.portal.addClient(A, '10.0.0.10');
    const payment = { method: 'grant', reference: A, amount: 1n, asset: 'X', at: r.now.t };
    const { session } = await r.manager.activate({ mac: A, metric: 'bytes', allotment: BigInt(100 * MiB), payment });
    r.meter.authStarting(A, session.id);
    await r.counters.count(A);
    r.counters.add(A, 1000);
    threads.afterListing.push(async () => {
      r.portal.auth(A);
      r.meter.authFinished(A, session.id, 'opened');
    });
    const reports = [await r.step()];
    for (let i = 0; i < 3; i++) {
      r.counters.add(A, MiB);
      reports.push(await r.step());
    }
    assert.is(r.listings(), 1);
    assert.is(r.billed(A), 1000 + 3 * MiB);
    assert.equal(
      reports.flatMap((rep) => rep.reopen),
      [],
    );
  } finally {
    await r.close();
  }
});

test(
  'a purchase after a tick was dispatched, its gate open before that tick read the listing and the counters: the ' +
    'next reading billed in full',
  async () => {
    const threads = new Threads();
    const r = await rig(undefined, () => threads.runner);
    try {
      r.portal.addClient(A, '10.0.0.10');
      // As a gate that opens while its sale is written: the session, its fresh counters and its auth all come after
      // the tick's dispatch, before its thread reads the listing (which shows the gate open) and the counters (at 0).
      threads.beforeListing.push(async () => {
        r.now.t += 5;
        const payment = { method: 'grant', reference: A, amount: 1n, asset: 'X', at: r.now.t };
        const { session } = await r.manager.activate({
          mac: A,
          metric: 'bytes',
          allotment: BigInt(100 * MiB),
          payment,
        });
        r.meter.authStarting(A, session.id);
        await r.counters.count(A);
        r.portal.auth(A);
        r.meter.authFinished(A, session.id, 'opened');
        r.meter.sessionStarted(A);
      });
      await r.step();
      assert.is(r.portal.get(A)!.state, 'Authenticated');
      r.counters.add(A, MiB);
      await r.step();
      r.counters.add(A, MiB);
      await r.step();
      assert.is(r.billed(A), 2 * MiB, 'every byte through the gate opened for this session, the first MiB included');
    } finally {
      await r.close();
    }
  },
);

test(
  "the same with the first reading held (the auth's outcome still on its way, a slow journal) while the next tick " +
    "bills: that tick's delta is not dropped as a base, every byte billed once",
  async () => {
    const threads = new Threads();
    const r = await rig(undefined, () => threads.runner);
    try {
      r.portal.addClient(A, '10.0.0.10');
      let sessionId = '';
      threads.beforeListing.push(async () => {
        r.now.t += 5;
        const payment = { method: 'grant', reference: A, amount: 1n, asset: 'X', at: r.now.t };
        const { session } = await r.manager.activate({
          mac: A,
          metric: 'bytes',
          allotment: BigInt(100 * MiB),
          payment,
        });
        sessionId = session.id;
        r.meter.authStarting(A, session.id);
        await r.counters.count(A);
        r.portal.auth(A);
        r.counters.add(A, MiB); // the first reading holds bytes, all of them this session's
      });
      await r.step();
      assert.is(r.billed(A), 0, 'held: the outcome is not known yet');
      r.counters.add(A, MiB);
      await r.step(); // the outcome still on its way: its journal write outlasts a tick
      r.meter.authFinished(A, sessionId, 'opened');
      r.meter.sessionStarted(A);
      r.counters.add(A, MiB);
      await r.step();
      assert.is(r.billed(A), 3 * MiB, 'every byte through the gate opened for this session');
      assert.is(r.billed(A), r.counters.clients.get(A)!.down);
    } finally {
      await r.close();
    }
  },
);

test('counters turned off: the first portal tick to commit is not billed, after one that failed too', async () => {
  const r = await rig();
  try {
    r.portal.addClient(A, '10.0.0.10');
    await r.step();
    await r.buy(A, 100 * MiB);
    await r.step();
    // The portal counts the same bytes as the kernel, from the same auth.
    r.counters.add(A, MiB);
    r.portal.addTraffic(A, MiB, 0);
    await r.step();
    assert.is(r.billed(A), MiB);
    // The counters' table could not be made again: the portal's tokens and counters replace the kernel's epochs.
    r.counters.enabled = false;
    r.portal.addTraffic(A, MiB, 0);
    r.portal.running = false; // the first portal tick reads nothing (the portal busy, restarting)
    const skipped = await r.step();
    assert.is(skipped.ok, false);
    r.portal.running = true;
    r.portal.addTraffic(A, MiB, 0);
    await r.step();
    assert.is(r.billed(A), MiB, "the portal's whole counters, 3 MiB of which the kernel billed 1: not billed again");
    r.portal.addTraffic(A, MiB, 0);
    await r.step();
    assert.is(r.billed(A), 2 * MiB, 'and from there on, what the portal counts');
  } finally {
    await r.close();
  }
});

// White-box (nothing else shows it): the MACs opened() while a listing is in flight are kept until that tick settles.
// A listing tick that fails (the table flushed by a firewall reload) and counters that then stay off (made again in
// vain: the meter lists the portal every tick, no kernel task again) left the list open, one entry per auth for good.
test('a listing tick that fails with the counters then off keeps no list of the gates opened since', async () => {
  const r = await rig();
  try {
    r.portal.addClient(A, '10.0.0.10');
    await r.step();
    r.counters.changes++; // a reason to list
    r.counters.gone();
    const skipped = await r.step();
    assert.is(skipped.skipped, 'counters-unreadable');
    r.counters.enabled = false;
    for (let i = 0; i < 100; i++) r.meter.authFinished(A, `s${i}`, 'opened');
    const kernel = (r.meter as unknown as { loop: { kernel: { openedInFlight?: string[] } } }).loop.kernel;
    assert.is(kernel.openedInFlight?.length ?? 0, 0);
  } finally {
    await r.close();
  }
});

test.run();
