// tier: peers; needs initdb mosquitto
/**
 * No message stops the stream (docs/fleet.md, "What a router may send"): between a real mosquitto and PostgreSQL 15,
 * a router's poison — a `health` or `pricing` nested 20,000 deep (JSON.stringify throws on it), one nested 4,000
 * deep, a 78-digit amount, payments the database refuses with errors of classes other than data (54001 and XX000,
 * raised by a trigger) — is refused, counted and acknowledged; another router's payment published after it is
 * stored, and so is one published while the collector was stopped, after its restart with the same session (the
 * broker does not hand the poison over again). The poisoning router's own next payment of the day is stored too
 * (its 78-digit payment did not make the day's roll-up overflow).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Db } from '../../src/fleet/db/index.ts';
import type { Collector } from '../../src/fleet/collector/index.ts';
import { collector, FakeRouter, fleetPeers, freshDb, waitFor } from './rig.ts';

const peers = fleetPeers(test);
const { open } = peers;

const nested = (depth: number, leaf: string): string => `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;

/** The status a poisoning router sends: a valid envelope, `field` the raw JSON text given. */
function statusJson(r: FakeRouter, field: string, value: string): string {
  const env = r.envelope('status', r.seq);
  const head = `"v":1,"router":"${r.name}","seq":${env.seq},"type":"status","at":${env.at},"online":true`;
  return `{${head},"${field}":${value}}`;
}

async function poison(bad: FakeRouter): Promise<void> {
  const publish = (kind: string, text: string) =>
    bad.client.publishAsync(`sluice/${bad.name}/${kind}`, Buffer.from(text), { qos: 1 });
  await publish('status', statusJson(bad, 'health', `{"a":${nested(20_000, '1')}}`));
  await publish('status', statusJson(bad, 'pricing', nested(20_000, '1')));
  await publish('status', statusJson(bad, 'health', `{"a":${nested(4_000, '1')}}`));
  await publish('status', statusJson(bad, 'queue', `{"a":"${'x'.repeat(100_000)}"}`));
  await bad.started(`s54001-${bad.seq}`, '1', 'raise-54001');
  await bad.started(`sXX000-${bad.seq}`, '1', 'raise-XX000');
}

const paid = async (db: Db, reference: string): Promise<boolean> =>
  (await db.query('SELECT 1 FROM fleet_payments WHERE reference = $1', [reference])).length === 1;

test("a router's poison is refused and counted; another's payment is stored, also across a restart", async () => {
  const db = await freshDb(peers.pg);
  open.push(db);
  // Errors of classes the database may raise for a message, not about its values: a program limit, an internal one.
  await db.exec(`
    CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.reference = 'raise-54001' THEN RAISE EXCEPTION 'too deep' USING ERRCODE = '54001'; END IF;
      IF NEW.reference = 'raise-XX000' THEN RAISE EXCEPTION 'internal' USING ERRCODE = 'XX000'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER poison BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION poison();`);
  const lines: string[] = [];
  const options = { clientId: 'poison-c', group: 'poison-g', connections: 2 };
  let c: Collector = await collector(db, peers.broker.url, lines, options);
  const bad = await FakeRouter.connect('bad', peers.broker.url);
  const good = await FakeRouter.connect('good', peers.broker.url);
  open.push(bad, good);

  await poison(bad);
  await bad.started('huge', '9'.repeat(78), 'huge-ref');
  await bad.started('after-huge', '5', 'after-huge-ref');
  await good.started('g1', '7', 'g1-ref');
  await waitFor(() => paid(db, 'g1-ref'), 30_000, `the other router's payment stored: ${lines.join('\n')}`);
  await waitFor(() => paid(db, 'after-huge-ref'), 30_000, "the poisoning router's next payment stored");
  assert.not.ok(await paid(db, 'huge-ref'), 'a 78-digit amount is refused');
  await waitFor(() => c.stats().rejected >= 7, 30_000, 'the poison counted');
  const rejects = await db.query<{ reason: string; count: string }>(
    "SELECT reason, count::text FROM fleet_rejects WHERE router = 'bad' ORDER BY reason",
  );
  const reasons = rejects.map((r) => r.reason).join(' | ');
  for (const want of ['health is nested', 'pricing is nested', 'queue is over', '54001', 'XX000', 'amount'])
    assert.ok(reasons.includes(want), `${want} in ${reasons}`);
  const counted = rejects.reduce((n, r) => n + Number(r.count), 0);
  assert.is(counted, 7, `each poison counted once: ${JSON.stringify(rejects)}`);

  // The collector away: the poison and a payment wait at the broker; after the restart (the same session) the
  // payment is stored and the poison was not handed over again (the first one's were acknowledged).
  await c.stop();
  await poison(bad);
  await good.started('g2', '8', 'g2-ref');
  c = await collector(db, peers.broker.url, lines, options);
  open.push(c);
  await waitFor(() => paid(db, 'g2-ref'), 30_000, `the payment sent while the collector was away: ${lines.join('\n')}`);
  await waitFor(() => c.stats().rejected >= 6, 30_000, 'the second poison counted');
  assert.is(c.stats().rejected, 6, 'only the new poison came, not the first again');
  const [total] = await db.query<{ n: string }>("SELECT sum(count)::text AS n FROM fleet_rejects WHERE router = 'bad'");
  assert.is(total!.n, '13');
});

test.run();
