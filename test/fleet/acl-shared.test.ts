// tier: peers; needs initdb mosquitto mosquitto_sub
/**
 * docs/fleet.md's broker configuration (its listeners, ACLs and accounts) on a real mosquitto: a report for r1 sent
 * with r2's credentials never reaches the database, r1's own does. Two collectors in one MQTT 5 shared-subscription
 * group split the usage reports: each is stored once, and both took a share; session messages come to both (unshared:
 * docs/fleet.md, "The broker restarts"), and each is stored once; a session message both refuse is counted once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from '../../src/fleet/db/index.ts';
import type { Collector } from '../../src/fleet/collector/index.ts';
import type { Mosquitto } from '../peers/mosquitto.ts';
import { collector, documentedBroker, FakeRouter, freshDb, Postgres, waitFor } from './rig.ts';

let pg: Postgres;
let broker: Mosquitto;
let db: Db;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
test.before(async () => {
  [pg, broker] = await Promise.all([Postgres.create(), documentedBroker({ r1: 'p1', r2: 'p2' }, 'pf')]);
  db = await freshDb(pg);
});
test.after(async () => {
  for (const x of open.splice(0).reverse()) await (x.stop ?? x.close)!.call(x);
  await db?.close();
  await broker?.close();
  await pg?.close();
});

const handled = (c: Collector) => c.stats().stored + c.stats().duplicates + c.stats().rejected;

test("the documented ACL: r2's credentials cannot report for r1; two collectors split the stream", async () => {
  // The fleet's listener for the collectors, the routers' for the routers.
  const lines: string[] = [];
  const auth = { username: 'fleet', password: 'pf' };
  const a = await collector(db, broker.secondUrl, lines, { clientId: 'ca', group: 'g', connections: 1, ...auth });
  open.push(a);
  const b = await collector(db, broker.secondUrl, lines, { clientId: 'cb', group: 'g', connections: 1, ...auth });
  open.push(b);
  // r2's account publishing on r1's topic, with r1 in the message: the broker drops it.
  const forger = await FakeRouter.connect('r1', broker.url, { username: 'r2', password: 'p2', clientId: 'forger' });
  open.push(forger);
  await forger.started('forged', '1000000', 'forged-ref', 1).catch(() => undefined);
  const r1 = await FakeRouter.connect('r1', broker.url, { username: 'r1', password: 'p1', clientId: 'r1' });
  open.push(r1);
  for (let i = 1; i <= 40; i++) await r1.started(`s${i}`, String(i), `ref-${i}`, i);
  for (let i = 1; i <= 40; i++) await r1.usage([[`s${i}`, 10, 20, 30]], 40 + i);
  // Each collector handles every session message and its share of the usage reports.
  await waitFor(() => handled(a) + handled(b) >= 40 * 2 + 40, 30_000, 'the messages');
  await new Promise((r) => setTimeout(r, 500));
  const [row] = await db.query<{ n: string; total: string }>(
    "SELECT count(*)::text AS n, sum(amount)::text AS total FROM fleet_payments WHERE router = 'r1'",
  );
  assert.equal([row!.n, row!.total], ['40', String((40 * 41) / 2)], "r1's own forty, not the forged one");
  assert.equal(await db.query("SELECT * FROM fleet_payments WHERE reference = 'forged-ref'"), []);
  assert.is(a.stats().stored + b.stats().stored, 80, 'each message stored once');
  assert.is(a.stats().duplicates + b.stats().duplicates, 40, 'only the session messages went to both');
  const [usage] = await db.query<{ n: string }>('SELECT sum(reports)::text AS n FROM fleet_usage_hourly');
  assert.is(usage!.n, '40', 'each usage report counted once');
  const share = (c: Collector) => c.stats().stored + c.stats().duplicates - 40;
  assert.ok(share(a) > 0 && share(b) > 0, `both took a share of the usage reports: ${share(a)}/${share(b)}`);
  console.log(`# [fleet] shared group: ${share(a)} + ${share(b)} of 40 usage reports`);
  // A session message both collectors get and refuse (an unknown version): one count, not one per collector.
  await r1.publish('session', { ...r1.envelope('session', 200), v: 9, event: 'started' });
  await waitFor(() => a.stats().rejected + b.stats().rejected >= 2, 30_000, 'both refused it');
  // A collector counts a refusal in its stats before its row is written: wait for the row, then give the other
  // collector's write the time to land (it must add nothing).
  const rejects = async (): Promise<string | null> =>
    (
      await db.query<{ n: string | null }>(
        "SELECT sum(count)::text AS n FROM fleet_rejects WHERE reason = 'unknown version'",
      )
    )[0]!.n;
  await waitFor(async () => (await rejects()) !== null, 30_000, 'the refusal counted');
  await new Promise((r) => setTimeout(r, 1000));
  assert.is(await rejects(), '1', 'counted once across the collectors');
});

test('sluice-fleet as the recipe runs it: the fleet account, its password from --password-file', async () => {
  // Only this collector writes now: the first test's two stop.
  for (const x of open.splice(0).reverse()) await (x.stop ?? x.close)!.call(x);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fleet-recipe-'));
  writeFileSync(join(dir, 'fleet.pass'), 'pf\n');
  const [row] = await db.query<{ d: string }>('SELECT current_database() AS d');
  let out = '';
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/fleet/main.ts',
      '--db',
      pg.url(row!.d),
      '--broker',
      broker.secondUrl,
      '--listen',
      'none',
    ].concat(['--username', 'fleet', '--password-file', join(dir, 'fleet.pass'), '--client-id', 'collector-a']),
    { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  try {
    await waitFor(() => out.includes('fleet: subscribed'), 120_000, 'the collector subscribed');
    const r9 = await FakeRouter.connect('r1', broker.url, { username: 'r1', password: 'p1', clientId: 'r1-recipe' });
    open.push(r9);
    await r9.started('recipe', '5', 'recipe-ref', 1000);
    await waitFor(
      async () => (await db.query("SELECT 1 FROM fleet_payments WHERE reference = 'recipe-ref'")).length === 1,
      60_000,
      `the payment stored by the recipe's collector: ${out}`,
    );
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
