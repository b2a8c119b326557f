// tier: peers; needs initdb mosquitto
/**
 * One router cannot slow the others (docs/fleet.md, "One router cannot slow the others"): between a real mosquitto
 * and PostgreSQL 15, a router floods 1,500 paid session messages, then another router publishes one payment. The other
 * router's payment is stored while most of the flood is still to be stored (the collector reads ahead, stores the
 * routers in turn, and keeps the flood beyond its share aside in the database instead of in the broker's queue ahead of
 * everyone). Then every one of the flood's payments is stored — none refused, none lost — across a collector restart
 * in the middle of it (what was kept aside is picked up by the next run).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import { collector, FakeRouter, fleetPeers, freshDb, waitFor } from './rig.ts';

const peers = fleetPeers(test);
const { open } = peers;

const FLOOD = 1500;

const paymentsOf = async (db: Db, router: string): Promise<number> => {
  const [row] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM fleet_payments WHERE router = $1', [
    router,
  ]);
  return Number(row!.n);
};

test("a router's flood waits behind itself: another's payment is stored first, and the flood in full", async () => {
  const db = await freshDb(peers.pg);
  open.push(db);
  const lines: string[] = [];
  const options = { clientId: 'fair-c', group: 'fair-g', connections: 2, waitingPerRouter: 8 };
  let c = await collector(db, peers.broker.url, lines, options);
  const flood = await FakeRouter.connect('flood', peers.broker.url);
  const other = await FakeRouter.connect('other', peers.broker.url);
  open.push(flood, other);

  await Promise.all(Array.from({ length: FLOOD }, (_, k) => flood.started(`f${k}`, '1', `f-${k}`)));
  await other.started('o1', '5', 'o1-ref');
  await waitFor(async () => (await paymentsOf(db, 'other')) === 1, 60_000, `the other router's payment: ${lines}`);
  const before = await paymentsOf(db, 'flood');
  assert.ok(before < FLOOD / 2, `the other router's payment stored before most of the flood (${before} of it first)`);
  assert.ok(c.stats().deferred > 0, 'the flood beyond its share was kept aside');

  // Stopped in the middle of the flood: what was kept aside is stored by the next run.
  await c.stop();
  c = await collector(db, peers.broker.url, lines, options);
  open.push(c);
  await waitFor(async () => (await paymentsOf(db, 'flood')) === FLOOD, 120_000, `the whole flood stored: ${lines}`);
  const [aside] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM deferred_messages');
  assert.is(aside!.n, '0', 'nothing left aside');
  const [rejects] = await db.query<{ n: string }>('SELECT coalesce(sum(count), 0)::text AS n FROM fleet_rejects');
  assert.is(rejects!.n, '0', 'nothing refused');
  const [revenue] = await db.query<{ n: string }>(
    "SELECT sum(amount)::text AS n FROM fleet_payments WHERE router = 'flood'",
  );
  assert.is(revenue!.n, String(FLOOD), 'each payment once');
});

test.run();
