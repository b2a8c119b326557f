// tier: peers; needs initdb mosquitto
/**
 * The lease service's broker connection dropped (a broker restart, a reconnect under load) on a real mosquitto and
 * PostgreSQL 15: what the routers sent meanwhile waits in its session at the broker and is handled once it is back. A
 * sale sent then registers its lease; were it lost, no lease would ever say where the device's session is.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeRouter, freshDb, recordingLog, waitFor } from '../fleet/rig.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { Postgres } from '../peers/postgres.ts';
import { Cuttable } from './cut.ts';
import { migrate } from '../../src/fleet/db/index.ts';
import { startVenueService, VENUE_MIGRATIONS } from '../../src/fleet/venue/index.ts';

const D = '02:00:00:00:5e:21';
const CLIENT = 'venue-reconnect-test';

test('a sale sent while the service was away from the broker registers its lease once it is back', async () => {
  const [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
  const db = await freshDb(pg);
  await migrate(db, VENUE_MIGRATIONS);
  const relay = await Cuttable.open(Number(new URL(broker.url).port));
  const lines: string[] = [];
  const service = await startVenueService({
    db,
    url: relay.url,
    clientId: CLIENT,
    venues: new Map([['ra', 'hall']]),
    keys: new Map([['*', 'k']]),
    log: recordingLog(lines, 'fleet venue service'),
  });
  const ra = await FakeRouter.connect('ra', broker.url);
  try {
    await service.ready;
    await relay.cut();
    await waitFor(
      () =>
        new RegExp(`(Client ${CLIENT} closed its connection|on client ${CLIENT}, disconnecting)`).test(broker.output),
      20_000,
      "the broker's word that the service went",
    );
    const at = Date.now();
    const env = ra.envelope('session', undefined, at);
    await ra.publish('session', {
      ...env,
      event: 'started',
      session: ra.session('00000000000000a1', { mac: D, allotment: 1048576, remaining: 1048576, started_at: at, at }),
      payment: { method: 'x402', reference: 'ref-a1', amount: '100', asset: 'usdc', at },
    });
    await relay.heal();
    const held = async () =>
      (await db.query('SELECT holder FROM venue_leases WHERE mac = $1', [D]))[0]?.['holder'] === 'ra';
    await waitFor(held, 20_000, 'the lease registered at ra');
    assert.ok(await held());
    // The operator is told, once each way; the broker kept the session for it.
    assert.is(lines.filter((l) => l.includes('broker connection lost')).length, 1, lines.join('\n'));
    assert.ok(
      lines.some((l) => /broker connection back.*session_present.*true/.test(l)),
      lines.join('\n'),
    );
  } finally {
    await ra.close();
    await service.stop();
    await relay.cut();
    await db.close();
    await broker.close();
    await pg.close();
  }
});

test.run();
