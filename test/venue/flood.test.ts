// tier: peers; needs initdb mosquitto
/**
 * One router's flood of venue claims, on a real mosquitto and PostgreSQL 15 (docs/roaming.md, "What the fleet
 * trusts"): the lease service runs on its own connections (as sluice-fleet opens them), so the collector stores
 * another router's payment while every venue connection waits; the flooder's claims beyond its bound (one running,
 * CLAIMS_PER_ROUTER waiting) are refused, counted in fleet_rejects to the message and answered `busy` with
 * ERR_VENUE_BUSY; another router's claim is answered once the database lets the service go on. The venue's tables
 * are locked while the flood arrives, so what is refused is a count, not a race.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import mqtt, { type MqttClient } from 'mqtt';
import { collector, FakeRouter, freshDb, recordingLog, waitFor } from '../fleet/rig.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { Postgres } from '../peers/postgres.ts';
import { migrate, openPostgres, type Db } from '../../src/fleet/db/index.ts';
import type { Collector } from '../../src/fleet/collector/index.ts';
import {
  startVenueService,
  VENUE_CONNECTIONS,
  VENUE_MIGRATIONS,
  type VenueService,
} from '../../src/fleet/venue/index.ts';
import { CLAIMS_PER_ROUTER } from '../../src/fleet/venue/service.ts';

const FLOOD = 1000;
const D = '02:00:00:00:5e:01';

let pg: Postgres;
let broker: Mosquitto;
let db: Db;
let venueDb: Db;
let service: VenueService;
let fleet: Collector;
let listener: MqttClient;
const lines: string[] = [];
const routers: FakeRouter[] = [];
/** The commands the service sent, per router. */
const heard = new Map<string, Array<{ cmd: string; args: Record<string, unknown> }>>();

test.before(async () => {
  [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
  db = await freshDb(pg);
  await migrate(db, VENUE_MIGRATIONS);
  const [{ name }] = (await db.query<{ name: string }>('SELECT current_database() AS name')) as [{ name: string }];
  venueDb = await openPostgres({ url: pg.url(name), max: VENUE_CONNECTIONS });
  service = await startVenueService({
    db: venueDb,
    url: broker.url,
    venues: new Map(['rx', 'rb'].map((n): [string, string] => [n, 'hall'])),
    keys: new Map([['*', 'k']]),
    log: recordingLog(lines, 'fleet venue service'),
  });
  await service.ready;
  fleet = await collector(db, broker.url, lines);
  listener = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  listener.on('message', (topic, payload) => {
    const c = JSON.parse(JSON.parse(payload.toString()).command as string);
    const router = topic.split('/')[1]!;
    heard.set(router, [...(heard.get(router) ?? []), { cmd: c.cmd, args: c.args }]);
  });
  await listener.subscribeAsync('sluice/+/cmd', { qos: 1 });
});

test.after(async () => {
  for (const r of routers) await r.close();
  await listener?.endAsync(true);
  await service?.stop();
  await fleet?.stop();
  await venueDb?.close();
  await db?.close();
  await broker?.close();
  await pg?.close();
});

const claim = (r: FakeRouter, mac: string) =>
  r.publish('venue', { kind: 'claim', router: r.name, mac, venue: 'hall' }, 'json');
const answers = (router: string) => (heard.get(router) ?? []).filter((c) => c.cmd === 'venue_answer');

test("a router's flood of claims: refused beyond its bound, counted; others answered, payments stored", async () => {
  const [rx, rb, rc] = await Promise.all(['rx', 'rb', 'rc'].map((n) => FakeRouter.connect(n, broker.url)));
  routers.push(rx!, rb!, rc!);
  const macs = Array.from(
    { length: FLOOD },
    (_, i) => `02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  );
  let unlock: () => void = () => undefined;
  const locked = new Promise<void>((r) => (unlock = r));
  let held: () => void = () => undefined;
  const holding = new Promise<void>((r) => (held = r));
  // Every claim waits on the lease table: rx's first runs (and waits), CLAIMS_PER_ROUTER wait, the rest are refused.
  const lock = db.transaction(async (tx) => {
    await tx.query('LOCK TABLE venue_leases IN ACCESS EXCLUSIVE MODE');
    held();
    await locked;
  });
  await holding;
  await Promise.all(macs.map((mac) => claim(rx!, mac)));
  const refused = FLOOD - 1 - CLAIMS_PER_ROUTER;
  await waitFor(() => service.stats()['dropped'] === refused, 60_000, `${refused} of rx's claims refused`);
  // The collector's connections are not the service's: a payment is stored while every venue connection waits.
  await rc!.started('paid-1', '2100', 'ref-flood');
  await waitFor(
    async () => (await db.query("SELECT 1 FROM payments WHERE reference = 'ref-flood'")).length === 1,
    60_000,
    'the payment stored during the flood',
  );
  await claim(rb!, D);
  unlock();
  await lock;
  await waitFor(() => answers('rb').some((a) => a.args['mac'] === D), 120_000, "rb's claim answered");
  assert.is(answers('rb').find((a) => a.args['mac'] === D)!.args['state'], 'none');

  const counted = async () =>
    db.query<{ router: string; count: string }>(
      `SELECT router, count::text FROM fleet_rejects WHERE topic = 'sluice/rx/venue' AND reason = $1`,
      [`over ${CLAIMS_PER_ROUTER} venue claims waiting`],
    );
  await waitFor(async () => (await counted())[0]?.count === String(refused), 20_000, 'the refusals counted');
  assert.equal(await counted(), [{ router: 'rx', count: String(refused) }]);
  const others = await db.query("SELECT topic FROM fleet_rejects WHERE topic NOT LIKE 'sluice/rx/%'");
  assert.is(others.length, 0, 'nothing of rb or rc refused');
  const busy = answers('rx').filter((a) => a.args['state'] === 'busy');
  assert.ok(busy.length >= 1 && busy.length <= refused, `${busy.length} busy answers`);
  assert.is((busy[0]!.args['error'] as { code: string }).code, 'ERR_VENUE_BUSY');
  await waitFor(
    () => answers('rx').filter((a) => a.args['state'] === 'none').length === 1 + CLAIMS_PER_ROUTER,
    120_000,
    "rx's claims within its bound answered",
  );
});

test.run();
