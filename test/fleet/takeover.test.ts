// tier: peers; needs initdb mosquitto
/**
 * No account takes another's client id (docs/fleet.md, "Deployment"), on a real mosquitto with the documented
 * configuration: while router r1 pays 60 times, another router's account connects again and again with the
 * collector's client ids and a clean start (which, were it taken, would delete the collector's session and its
 * queue) and with r1's own id (which would make the broker publish r1's Last-Will, "offline"). All 60 payments are
 * stored and r1 is never marked offline. The fleet's listener refuses that account outright.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import mqtt from 'mqtt';
import { encode } from '../../src/upstream/mqtt/messages.ts';
import type { Mosquitto } from '../peers/mosquitto.ts';
import { collector, documentedBroker, FakeRouter, freshDb, Postgres, waitFor } from './rig.ts';

let pg: Postgres;
let broker: Mosquitto;
test.before(async () => {
  [pg, broker] = await Promise.all([Postgres.create(), documentedBroker({ r1: 'p1', r2: 'p2' }, 'pf')]);
});
test.after(async () => {
  await broker?.close();
  await pg?.close();
});

test("another account cannot take a collector's client id nor speak a router's Last-Will", async () => {
  const db = await freshDb(pg);
  const lines: string[] = [];
  const c = await collector(db, broker.secondUrl, lines, {
    clientId: 'collector-a',
    connections: 2,
    username: 'fleet',
    password: 'pf',
  });
  const lost = { v: 1, router: 'r1', seq: 0, type: 'status', at: Date.now(), online: false, reason: 'lost' };
  const r1 = await FakeRouter.connect('r1', broker.url, {
    username: 'r1',
    password: 'p1',
    clientId: 'sluice-r1',
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
    will: { topic: 'sluice/r1/status', payload: encode('msgpack', lost), qos: 1, retain: true },
  });
  await r1.publish('status', { ...r1.envelope('status', 0), online: true });

  // The attack: r2's account, as the collector's connections and as r1 (its id, and the id the router asks for).
  const ids = ['collector-a-0', 'collector-a-1', 'r1', 'sluice-r1'];
  let attacking = true;
  let attempts = 0;
  const attack = (async () => {
    while (attacking) {
      for (const url of [broker.url, broker.secondUrl])
        for (const clientId of ids) {
          const options = { username: 'r2', password: 'p2', clientId, clean: true, reconnectPeriod: 0 };
          const a = await mqtt.connectAsync(url, { protocolVersion: 5, ...options, connectTimeout: 2000 }).then(
            (client) => client,
            () => null,
          );
          attempts++;
          await a?.endAsync(true).catch(() => undefined);
        }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  for (let i = 1; i <= 60; i++) {
    await r1.started(`s${i}`, String(i), `pay-${i}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  attacking = false;
  await attack;
  assert.ok(attempts >= 8, `the attack ran (${attempts} connections)`);
  const stored = async () =>
    Number((await db.query<{ n: string }>("SELECT count(*)::text AS n FROM fleet_payments WHERE router = 'r1'"))[0]!.n);
  await waitFor(async () => (await stored()) === 60, 30_000, `60 of 60 payments stored (${await stored()})`);
  const offline = await db.query("SELECT * FROM fleet_status_changes WHERE router = 'r1' AND online = false");
  assert.equal(offline, [], 'r1 never marked offline by another account');
  await r1.close();
  await c.stop();
  await db.close();
});

test.run();
