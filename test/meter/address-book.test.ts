// tier: fast
// The LAN endpoint's IP → MAC lookups from the list the meter's ticks read anyway: no portal read of their own while
// the ticks give it, a read of their own (the directory's fallback) whenever they do not.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AddressBook, ADDRESS_INTEREST_MS } from '../../src/meter/address-book.ts';
import { createInlineRunner, Meter, sessionManagerPort } from '../../src/meter/index.ts';
import { runUsageTask } from '../../src/meter/task.ts';
import { EpochAccountant } from '../../src/meter/epochs.ts';
import { createTable } from '../../src/meter/table.ts';
import { portalClientDirectory } from '../../src/gate/mac-resolver.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { systemTimers } from '../../src/time.ts';
import { recordedPortalSocket } from '../helpers/portal-socket.ts';

const A = '02:00:00:00:0f:01';
const B = '02:00:00:00:0f:02';

test("the worker hands back every client's MAC and IP only when the task asks, for both portals", async () => {
  for (const flavour of ['opennds', 'nodogsplash'] as const) {
    const portal = new PortalModel({ flavour }, { clock: { now: () => 1_795_221_800_000 } });
    portal.addClient(A, '10.0.0.10');
    portal.addClient(B.toUpperCase(), '10.0.0.11');
    const task = {
      tick: 1,
      table: createTable(16),
      source: { kind: 'inline' as const, text: portal.renderJson() },
      flavour,
      timeoutMs: 1000,
    };
    const asked = await runUsageTask({ ...task, addresses: true }, new EpochAccountant());
    assert.ok(asked.ok);
    assert.equal(asked.ok && asked.addresses, [A, '10.0.0.10', B, '10.0.0.11'], flavour);
    const notAsked = await runUsageTask({ ...task, tick: 2, table: createTable(16) }, new EpochAccountant());
    assert.is(notAsked.ok && notAsked.addresses, undefined, `${flavour}: nothing extra unless asked`);
  }
});

test(
  'a snapshot the scanner leaves to JSON.parse (an escape ' + 'in a value) still hands back its addresses, once each',
  async () => {
    const portal = new PortalModel({ flavour: 'opennds' }, { clock: { now: () => 1_795_221_800_000 } });
    portal.addClient(A, '10.0.0.10');
    portal.addClient(B, '10.0.0.11');
    const text = portal.renderJson().replace('"custom":"none"', '"custom":"a\\/b"');
    const r = await runUsageTask(
      {
        tick: 1,
        table: createTable(16),
        source: { kind: 'inline', text },
        flavour: 'opennds',
        timeoutMs: 1000,
        addresses: true,
      },
      new EpochAccountant(),
    );
    assert.ok(r.ok && r.fallback, 'the scanner stopped at the escape');
    assert.equal(r.ok && r.addresses, [A, '10.0.0.10', B, '10.0.0.11']);
  },
);

test(
  'the book: a fresh list at once, a stale one asks for a tick, a skipped tick or none in time says "read it ' +
    'yourself"',
  async () => {
    let ticksAsked = 0;
    const book = new AddressBook(systemTimers, () => {
      ticksAsked++;
    });
    assert.is(book.wanted(0), false, 'nobody asked: the ticks hand back nothing');

    const first = book.get(1000, 1000, 5000);
    assert.is(ticksAsked, 1, 'no list yet: a tick is asked for');
    assert.is(book.wanted(1000), true);
    book.record(1100, false, undefined); // a tick dispatched before the ask: the lookup waits for the next
    book.record(1200, true, [A, '10.0.0.10', B, '']);
    assert.equal(await first, [
      { mac: A, ip: '10.0.0.10' },
      { mac: B, ip: null },
    ]);

    assert.equal(await book.get(2100, 1000, 5000), [
      { mac: A, ip: '10.0.0.10' },
      { mac: B, ip: null },
    ]);
    assert.is(ticksAsked, 1, 'a list at most 1 s old serves without a tick');

    const stale = book.get(2300, 1000, 5000);
    assert.is(ticksAsked, 2);
    book.record(2400, true, undefined); // that tick was skipped (the portal did not answer)
    assert.is(await stale, null);

    const late = await book.get(2500, 1000, 20);
    assert.is(late, null, 'no tick within waitMs');
    book.record(2600, true, [A, '10.0.0.99']); // the timed-out lookup is not called again
    assert.is(book.wanted(2500 + ADDRESS_INTEREST_MS - 1), true, 'asked for a while after the last lookup');
    assert.is(book.wanted(2500 + ADDRESS_INTEREST_MS), false, 'then no more');
  },
);

test('the book: a tick already in flight when a lookup asks for a newer list does not answer it', async () => {
  let ticksAsked = 0;
  const book = new AddressBook(systemTimers, () => {
    ticksAsked++;
  });
  book.record(1000, true, [A, '10.0.0.10']);
  const fresh = book.get(1500, 0, 5000); // a list read from 1500 on
  assert.is(ticksAsked, 1);
  book.record(1400, true, [A, '10.0.0.10']); // dispatched before the ask: an older list
  book.record(1600, true, [A, '10.0.0.10', B, '10.0.0.11']);
  assert.equal(await fresh, [
    { mac: A, ip: '10.0.0.10' },
    { mac: B, ip: '10.0.0.11' },
  ]);
  assert.equal(
    await book.get(1700, 1000, 5000),
    [
      { mac: A, ip: '10.0.0.10' },
      { mac: B, ip: '10.0.0.11' },
    ],
    'the newest list is kept',
  );
  // A purchase's gate asks the latest list for its client's address, and asks for no tick.
  assert.is(book.ipOf(B, 1700, 3000), '10.0.0.11');
  assert.is(book.ipOf('02:00:00:00:0f:09', 1700, 3000), null, 'not listed');
  assert.is(book.ipOf(B, 1600 + 3001, 3000), null, 'that list is too old');
  assert.is(ticksAsked, 1);
});

test("through a running meter: lookups take the ticks' list and make no portal read of their own", async () => {
  const portal = new PortalModel({ flavour: 'opennds' });
  portal.addClient(A, '10.0.0.10');
  portal.addClient(B, '10.0.0.11');
  const recorded = await recordedPortalSocket(portal);
  const { calls, valve } = recorded;
  const manager = await SessionManager.open({ store: new MemoryStore() });
  const meter = new Meter({
    source: { kind: 'socket', path: recorded.path },
    flavour: 'opennds',
    pollIntervalMs: 60_000,
    sessions: sessionManagerPort(manager),
    runner: createInlineRunner(),
    portal: valve,
    newSessionGraceMs: 0,
  });
  try {
    // The valve's own list reads, counted: the lookups' fallback.
    let ownReads = 0;
    const snapshot = valve.snapshot.bind(valve);
    valve.snapshot = (priority) => {
      ownReads++;
      return snapshot(priority);
    };
    const directory = portalClientDirectory(valve, () => meter.clientAddresses(1000, 5000));
    assert.is(await directory.macOf('10.0.0.11'), B, 'before the meter runs: the directory reads the portal itself');
    assert.equal(calls, ['json']);
    meter.start(); // its start tick, asked for nothing; the next is a minute away
    while (meter.stats().ticks < 1) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 1100)); // past the directory's own 1 s
    calls.length = 0;
    assert.is(await directory.macOf('10.0.0.10'), A);
    assert.equal(calls, ['json'], `one read, the tick's (asked for by the lookup): ${JSON.stringify(calls)}`);
    assert.is(meter.stats().ticks, 2, 'the lookup asked for a tick');
    assert.is(ownReads, 1, 'only the lookup before the meter ran read the list itself');
    portal.remove(A);
    portal.addClient('02:00:00:00:0f:03', '10.0.0.10'); // the address moved to another device
    await new Promise((r) => setTimeout(r, 1100));
    calls.length = 0;
    assert.is(await directory.macOf('10.0.0.10'), '02:00:00:00:0f:03', 'a list older than 1 s is not used');
    assert.equal(calls, ['json']);
    assert.is(meter.stats().ticks, 3);
    assert.is(ownReads, 1);
  } finally {
    await meter.close();
    await manager.close();
    await recorded.close();
  }
});

test.run();
