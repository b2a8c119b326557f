// tier: peers; needs initdb mosquitto
/**
 * Roaming when the venue cannot agree, the cases failures.test.ts leaves (docs/roaming.md), with real processes: two
 * sluice daemons, a real mosquitto, the fleet's lease service on a real PostgreSQL 15. A network split (the holder cut
 * from the broker while it keeps serving): the lease moves only once it expired, and what the holder served past its
 * last report is booked as the overlap and charged to the session where it went. The broker killed in the middle of
 * a handover, and the holder killed -9 in the middle of a release: whatever step it caught, nobody gets free access
 * meanwhile, and the handover completes afterwards with exactly what was left. Each: usage of both routers ≤ what was
 * bought + the stated overlap; the session is never lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DaemonLab } from '../daemon/harness.ts';
import { lease, MiB, sleep, ticksOk, usedBy, type Venue, venuePerTest } from './rig.ts';

const D = '02:00:00:00:5e:04';
const BOUGHT = 8n * BigInt(MiB);
const venues = venuePerTest(test);

const used = (lab: DaemonLab): Promise<bigint> => usedBy(lab, D);
const ticks = ticksOk;

/** `n` bytes at `lab`'s portal, billed there (after two ticks, so the gate's first reading is behind us). */
async function traffic(lab: DaemonLab, n: number): Promise<void> {
  const before = await used(lab);
  const from = await ticks(lab);
  await lab.waitFor(async () => (await ticks(lab)) >= from + 2, 60_000, 'meter ticks');
  lab.portal.addTraffic(D, n, 0);
  await lab.waitFor(async () => (await used(lab)) === before + BigInt(n), 30_000, 'usage billed');
}

/** A session at `lab` with 1.25 MiB used, reported to the fleet. */
async function sold(v: Venue, lab: DaemonLab): Promise<bigint> {
  await lab.call('grant', { mac: D, bytes: Number(BOUGHT) });
  await lab.waitFor(() => lab.clientState(D) === 'Authenticated', 30_000, 'gate open');
  await lab.waitFor(async () => (await lease(v.db, D))?.['state'] === 'held', 30_000, 'the lease registered');
  await traffic(lab, MiB + 256 * 1024);
  const n = await used(lab);
  await lab.waitFor(async () => (await lease(v.db, D))?.['used'] === String(n), 30_000, 'usage reported');
  return n;
}

/** The lease's state and holder, polled every 10 ms until `done` says so. */
async function leaseUntil(v: Venue, done: (row: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const row = await lease(v.db, D);
    if (row !== undefined && done(row)) return row;
    if (Date.now() > deadline) throw new Error(`the lease did not change: ${JSON.stringify(row)}`);
    await sleep(10);
  }
}

/** Never both gates open at once, sampled every 100 ms for `ms`. */
async function neverBoth(ra: DaemonLab, rb: DaemonLab, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    assert.not.ok(ra.clientState(D) === 'Authenticated' && rb.clientState(D) === 'Authenticated', 'open at both');
    await sleep(100);
  }
}

test('a network split: the holder keeps serving; the lease moves once expired; the overlap is charged', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: 8000, cuttable: ['ra'] });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const reported = await sold(venue, ra);
  await venue.relays.get('ra')!.cut();
  // Cut off, ra goes on serving (and billing) what it holds: 512 KiB more there that the fleet does not hear of.
  await traffic(ra, 512 * 1024);
  const atRaCut = await used(ra);
  await sleep(1500); // the device left ra
  await rb.call('venue_claim', { mac: D }); // once: rb keeps claiming by itself
  await rb.waitFor(() => rb.clientState(D) === 'Authenticated', 90_000, 'gate open at rb once the lease expired');
  const here = await rb.session(D);
  assert.is(BigInt(here['allotment'] as string), BOUGHT - reported, "what ra's last report left");
  const [move] = await venue.db.query<Record<string, unknown>>('SELECT how FROM venue_moves WHERE mac = $1', [D]);
  assert.is(move!['how'], 'expired');

  // The split heals: ra is revoked, what it served past its report is booked and charged to the session at rb.
  await venue.relays.get('ra')!.heal();
  await ra.waitFor(async () => (await ra.session(D))['end_cause'] === 'moved', 60_000, 'revoked at ra');
  await ra.waitFor(() => ra.clientState(D) !== 'Authenticated', 30_000, 'gate closed at ra');
  const atRa = await used(ra);
  assert.is(atRa, atRaCut, 'ra billed everything it served');
  await rb.waitFor(
    async () => (await venue.db.query('SELECT 1 FROM venue_moves WHERE charged_at IS NOT NULL')).length === 1,
    60_000,
    'the charge confirmed',
  );
  const [booked] = await venue.db.query<{ overlap: string; charged: string }>(
    'SELECT overlap::text, charged::text FROM venue_moves WHERE mac = $1',
    [D],
  );
  const overlap = BigInt(booked!.overlap);
  assert.is(overlap, atRa - reported, 'the overlap: what ra served after its last report');
  assert.is(booked!.charged, String(overlap), 'all of it taken');
  const allotment = BigInt((await rb.session(D)).allotment as string);
  assert.is(allotment, BOUGHT - reported - overlap, 'taken off the session where it is now');

  // The invariant: what was served at both, plus what is left, is what was bought; usage ≤ bought.
  await traffic(rb, MiB);
  const left = allotment - (await used(rb));
  assert.is(atRa + (await used(rb)) + left, BOUGHT, 'nothing free, nothing lost');
  assert.ok(atRa + (await used(rb)) <= BOUGHT);
  console.log(`# split: overlap ${overlap} B booked and charged (ra served ${atRa - reported} B past its report)`);
});

/** Waits until `lab` logged that it gave the session up (ended `moved`, durable): the reply goes out right after. */
async function movedOut(lab: DaemonLab): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!lab.output.includes('venue: session moved out')) {
    if (Date.now() > deadline) throw new Error('the holder did not give the session up');
    await sleep(2);
  }
}

for (const at of ['releasing', 'moved-out'] as const)
  test(`the broker killed mid-handover (${at}): no free access meanwhile; back, it completes`, async () => {
    const venue = await venues.start(['ra', 'rb'], [D]);
    const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
    await sold(venue, ra);
    await sleep(1500); // the device left ra
    await rb.call('venue_claim', { mac: D });
    const caught =
      at === 'releasing'
        ? await leaseUntil(venue, (r) => r['state'] !== 'held' || r['holder'] !== 'ra')
        : await movedOut(ra).then(() => ({ state: 'moved out at ra' }));
    await venue.broker.stop('SIGKILL');
    const atRaState = String((await ra.session(D))['state']);
    await neverBoth(ra, rb, 4000);
    assert.is((await rb.callStatus('session', { mac: D })).data?.['session'], undefined, 'nothing sold at rb');

    await venue.broker.start();
    await rb.waitFor(() => rb.clientState(D) === 'Authenticated', 90_000, 'gate open at rb after the broker is back');
    await ra.waitFor(() => ra.clientState(D) !== 'Authenticated', 30_000, 'gate closed at ra');
    const atRa = await used(ra);
    assert.is((await ra.session(D))['end_cause'], 'moved');
    assert.is(BigInt((await rb.session(D)).allotment as string), BOUGHT - atRa, 'exactly what was left');
    await rb.waitFor(async () => (await lease(venue.db, D))?.['state'] === 'held', 30_000, 'held at rb');
    const row = (await lease(venue.db, D))!;
    assert.equal([row['holder'], row['epoch']], ['rb', 2]);
    console.log(`# broker killed with the lease ${caught['state']} (ra's session ${atRaState}): completed afterwards`);
  });

for (const at of ['releasing', 'moved-out'] as const)
  test(`the holder killed -9 mid-release (${at}): restarted, it completes with exactly what was left`, async () => {
    const venue = await venues.start(['ra', 'rb'], [D]);
    const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
    await sold(venue, ra);
    await sleep(1500); // the device left ra
    await rb.call('venue_claim', { mac: D });
    const caught =
      at === 'releasing'
        ? await leaseUntil(venue, (r) => r['state'] === 'releasing' || r['holder'] !== 'ra')
        : await movedOut(ra).then(() => ({ state: 'moved out at ra' }));
    await ra.stopDaemon('SIGKILL');
    await neverBoth(ra, rb, 3000);
    const during = (await lease(venue.db, D))!;

    await ra.startDaemon();
    const journaled = await ra.callStatus('session', { mac: D });
    const afterRestart = (journaled.data?.['session'] as Record<string, unknown> | undefined)?.['state'];
    await rb.waitFor(() => rb.clientState(D) === 'Authenticated', 90_000, 'gate open at rb');
    await ra.waitFor(async () => (await ra.session(D))['end_cause'] === 'moved', 30_000, 'ended moved at ra');
    await ra.waitFor(() => ra.clientState(D) !== 'Authenticated', 30_000, 'gate closed at ra');
    const atRa = await used(ra);
    assert.is(BigInt((await rb.session(D)).allotment as string), BOUGHT - atRa, 'exactly what was left');
    const moves = await venue.db.query<{ how: string }>('SELECT how FROM venue_moves WHERE mac = $1', [D]);
    assert.equal(
      moves.map((m) => m.how),
      ['released'],
    );
    await traffic(rb, MiB);
    assert.ok(atRa + (await used(rb)) <= BOUGHT, 'usage at both within what was bought');
    console.log(
      `# kill -9 with the lease ${caught['state']} → ${during['state']} while ra was down; ` +
        `ra's session after its restart: ${String(afterRestart)}`,
    );
  });

test.run();
