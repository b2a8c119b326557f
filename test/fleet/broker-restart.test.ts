// tier: peers; needs initdb mosquitto
/**
 * The collector through a restart of a real mosquitto (Debian's 2.0.11, persistence on): it subscribes again and
 * receives again, and a session message a router publishes after the restart, before any collector is back, is kept
 * for the collector and stored (mosquitto 2.0.11 does not keep shared subscriptions over a restart: docs/fleet.md,
 * "The broker restarts").
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import type { Collector } from '../../src/fleet/collector/index.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { collector, FakeRouter, freshDb, Postgres, waitFor } from './rig.ts';

let pg: Postgres;
let broker: Mosquitto;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
test.before(async () => {
  [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create({ persistence: true })]);
});
test.after.each(async () => {
  for (const x of open.splice(0).reverse()) await (x.stop ?? x.close)!.call(x);
});
test.after(async () => {
  await broker?.close();
  await pg?.close();
});

async function setup(): Promise<{ db: Db; id: string; lines: string[]; c: Collector; r1: FakeRouter }> {
  const db = await freshDb(pg);
  open.push(db);
  const id = Math.random().toString(16).slice(2, 8);
  const lines: string[] = [];
  const c = await collector(db, broker.url, lines, { clientId: `t-${id}`, group: `g-${id}` });
  open.push(c);
  const r1 = await FakeRouter.connect('r1', broker.url, { clean: false, clientId: `r1-${id}` });
  open.push(r1);
  return { db, id, lines, c, r1 };
}

const stored = async (db: Db): Promise<number[]> =>
  (
    await db.query<{ seq: string }>(
      'SELECT seq::text FROM messages m JOIN routers r ON r.id = m.router_id ORDER BY seq',
    )
  ).map((r) => Number(r.seq));

const subscribed = (lines: string[]) => lines.filter((l) => l.includes('fleet: subscribed')).length;

test('a collector connected through a broker restart subscribes again and receives usage and sessions', async () => {
  const { db, lines, r1 } = await setup();
  await r1.started('s1', '10');
  await r1.usage([['s1', 100, 200, 300]]);
  await waitFor(async () => (await stored(db)).length === 2, 30_000, 'two messages before the restart');
  const before = subscribed(lines);
  await broker.stop();
  await broker.start();
  await waitFor(() => subscribed(lines) >= before + 2, 60_000, 'both connections subscribed again');
  // Several usage reports, so both members of the shared subscription get some.
  await r1.started('s2', '20');
  for (let i = 0; i < 6; i++) await r1.usage([['s1', 100, 200, 300 + i]]);
  await waitFor(async () => (await stored(db)).length === 9, 60_000, 'nine messages');
  const paid = await db.query<{ total: string }>('SELECT sum(amount)::text AS total FROM fleet_payments');
  assert.equal(paid, [{ total: '30' }]);
});

test('a session message published after a broker restart, before the collector is back, is stored', async () => {
  const { db, id, lines, c, r1 } = await setup();
  await r1.started('s1', '10');
  await waitFor(async () => (await stored(db)).length === 1, 30_000, 'the first message');
  await c.stop();
  open.splice(open.indexOf(c), 1);
  await broker.stop();
  await broker.start();
  await waitFor(() => r1.client.connected, 30_000, 'the router connected again');
  await r1.started('s2', '20');
  // The same collector (its client ids) comes back after the message was published.
  const back = await collector(db, broker.url, lines, { clientId: `t-${id}`, group: `g-${id}` });
  open.push(back);
  await waitFor(async () => (await stored(db)).length === 2, 60_000, 'the session message from the restarted broker');
  const paid = await db.query<{ total: string }>('SELECT sum(amount)::text AS total FROM fleet_payments');
  assert.equal(paid, [{ total: '30' }]);
});

test.run();
