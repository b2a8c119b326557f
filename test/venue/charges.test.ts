// tier: peers; needs initdb mosquitto
/**
 * The overlap charge (docs/roaming.md), with real processes: two sluice daemons, a real mosquitto, the fleet's lease
 * service on a real PostgreSQL 15. The holder `ra` is cut from the broker and keeps serving; the lease moves to `rb`
 * once it expired; healed, `ra` is revoked and what it served after the move is the overlap, taken off the session at
 * `rb`. A time session's seconds as a data session's bytes. The charge is journaled at `rb` before it answers (`rb`
 * killed -9 right after it took the charge still has it taken, once), and resent by the fleet until answered (the
 * broker killed while the charge was on its way to `rb`, cut off). Each: usage at both + what is left ≤ what was
 * bought + the overlap not taken (none here); the session is never lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DaemonLab } from '../daemon/harness.ts';
import { lease, MiB, sleep, ticksOk, usedBy, type Venue, venuePerTest } from './rig.ts';

const D = '02:00:00:00:5e:06';
const BOUGHT = 8n * BigInt(MiB);
const SECONDS = 3600n;
const venues = venuePerTest(test);

const big = async (lab: DaemonLab, field: string): Promise<bigint> => BigInt((await lab.session(D))[field] as string);

/** The move's booked overlap and what the router it went to said it took (null: not yet answered). */
async function booked(v: Venue): Promise<{ overlap: bigint; charged: string | null; at: boolean } | null> {
  const [row] = await v.db.query<{ overlap: string; charged: string | null; at: boolean; revoked: boolean }>(
    `SELECT overlap::text, charged::text, charged_at IS NOT NULL AS at, revoked_at IS NOT NULL AS revoked
     FROM venue_moves WHERE mac = $1`,
    [D],
  );
  return row?.revoked ? { overlap: BigInt(row.overlap), charged: row.charged, at: row.at } : null;
}

/**
 * A session granted at `ra` (`grant`: bytes or seconds), reported; `ra` cut from the broker; the lease moved to `rb`
 * once expired (`ra` still serving); `beforeCut` runs just before the cut. Returns the figures `rb` opened with.
 */
async function split(v: Venue, grant: Record<string, unknown>, beforeCut: () => Promise<void>): Promise<bigint> {
  const [ra, rb] = [v.routers.get('ra')!, v.routers.get('rb')!];
  await ra.call('grant', { mac: D, ...grant });
  await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 30_000, 'gate open at ra');
  await ra.waitFor(async () => (await lease(v.db, D))?.['state'] === 'held', 30_000, 'the lease registered');
  await beforeCut();
  await v.relays.get('ra')!.cut();
  await sleep(1500); // the device left ra
  await rb.call('venue_claim', { mac: D }); // once: rb keeps claiming by itself
  await rb.waitFor(() => rb.clientState(D) === 'Authenticated', 90_000, 'gate open at rb once the lease expired');
  const [move] = await v.db.query<{ how: string }>('SELECT how FROM venue_moves WHERE mac = $1', [D]);
  assert.is(move!.how, 'expired');
  return big(rb, 'allotment');
}

test('a time session: the seconds the cut-off holder served after the move are taken off the session', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: 8000, cuttable: ['ra'] });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const opened = await split(venue, { seconds: Number(SECONDS) }, () => sleep(1000));
  await sleep(3000); // ra serves on, cut off, after the lease moved: the overlap
  // Read once rb's clock started (at its gate's opening, just after the auth: the deadline moves then) and before
  // the charge (after the heal): read at the gate's opening, it was 1 s early once in CI.
  const deadline = BigInt((await rb.session(D))['expires_at'] as number); // unix seconds
  await venue.relays.get('ra')!.heal();
  await ra.waitFor(async () => (await ra.session(D))['end_cause'] === 'moved', 60_000, 'revoked at ra');
  await rb.waitFor(async () => (await booked(venue))?.at === true, 60_000, 'the charge answered');
  const b = (await booked(venue))!;
  assert.ok(b.overlap >= 3n, `the overlap: the seconds ra served after the move (${b.overlap})`);
  assert.is(b.charged, String(b.overlap), 'all of it taken');
  assert.is(await big(rb, 'allotment'), opened - b.overlap, 'taken off the session at rb');
  const now = BigInt((await rb.session(D))['expires_at'] as number);
  assert.is(deadline - now, b.overlap, "rb's deadline came forward by the overlap");
  const [move] = await venue.db.query<{ used: string }>('SELECT used::text FROM venue_moves WHERE mac = $1', [D]);
  assert.is(await big(ra, 'used'), BigInt(move!.used) + b.overlap, 'the overlap: what ra served past the move');
  const sum = (await big(ra, 'used')) + (await big(rb, 'allotment'));
  assert.ok(sum <= SECONDS, `served at ra + all rb may serve (${sum}) ≤ bought (${SECONDS})`);
  console.log(`# time session: ${b.overlap} s served at ra after the move, taken off rb's session (sum ${sum} s)`);
});

/** `n` bytes at `lab`'s portal, billed there (after two ticks, so the gate's first reading is behind us). */
async function traffic(lab: DaemonLab, n: number): Promise<void> {
  const before = await usedBy(lab, D);
  const from = await ticksOk(lab);
  await lab.waitFor(async () => (await ticksOk(lab)) >= from + 2, 60_000, 'meter ticks');
  lab.portal.addTraffic(D, n, 0);
  await lab.waitFor(async () => (await usedBy(lab, D)) === before + BigInt(n), 30_000, 'usage billed');
}

/** A data session split as above, `ra` serving 512 KiB after its last report; the bytes reported before. */
async function dataSplit(v: Venue): Promise<{ opened: bigint; reported: bigint }> {
  const ra = v.routers.get('ra')!;
  let reported = 0n;
  const opened = await split(v, { bytes: Number(BOUGHT) }, async () => {
    await traffic(ra, MiB);
    reported = await usedBy(ra, D);
    await ra.waitFor(async () => (await lease(v.db, D))?.['used'] === String(reported), 30_000, 'usage reported');
  });
  await traffic(ra, 512 * 1024); // cut off, ra goes on serving (and billing) what it holds
  return { opened, reported };
}

test('the charge is journaled before it is answered: rb killed -9 just after it took it has it, once', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: 8000, cuttable: ['ra'] });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const { opened, reported } = await dataSplit(venue);
  assert.is(opened, BOUGHT - reported, "what ra's last report left");
  await venue.relays.get('ra')!.heal();
  await rb.waitFor(async () => rb.output.includes('venue: overlap charged'), 60_000, 'the charge taken at rb');
  await rb.stopDaemon('SIGKILL');
  await rb.startDaemon();
  await rb.waitFor(async () => (await booked(venue))?.at === true, 60_000, 'the charge answered');
  const overlap = (await booked(venue))!.overlap;
  assert.is(overlap, (await usedBy(ra, D)) - reported, 'the overlap: what ra served after its last report');
  assert.is(await big(rb, 'allotment'), opened - overlap, 'taken once, and still after the kill');
  await sleep(3000); // the fleet's resends (every 1 s here) meanwhile take nothing more
  assert.is(await big(rb, 'allotment'), opened - overlap, 'taken once');
  await traffic(rb, MiB);
  const left = (await big(rb, 'allotment')) - (await usedBy(rb, D));
  assert.is((await usedBy(ra, D)) + (await usedBy(rb, D)) + left, BOUGHT, 'nothing free, nothing lost');
});

test('the broker killed while the charge is on its way: the fleet sends it again until it is answered', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: 8000, cuttable: ['ra', 'rb'] });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const { opened } = await dataSplit(venue);
  await rb.waitFor(async () => (await lease(venue.db, D))?.['state'] === 'held', 30_000, 'held at rb');
  await venue.relays.get('rb')!.cut(); // the charge's way to rb is cut
  await venue.relays.get('ra')!.heal();
  await ra.waitFor(async () => (await booked(venue)) !== null, 60_000, 'the overlap booked');
  await sleep(2500); // the fleet sends the charge (and again): none reaches rb
  await venue.broker.stop('SIGKILL'); // whatever the broker held for rb is lost
  assert.is((await booked(venue))!.at, false, 'not answered');
  assert.is(await big(rb, 'allotment'), opened, 'not taken yet');
  await venue.broker.start();
  await venue.relays.get('rb')!.heal();
  await rb.waitFor(async () => (await booked(venue))?.at === true, 90_000, 'the charge answered');
  const overlap = (await booked(venue))!.overlap;
  assert.ok(overlap > 0n);
  assert.is(await big(rb, 'allotment'), opened - overlap, 'taken once');
  const left = (await big(rb, 'allotment')) - (await usedBy(rb, D));
  assert.is((await usedBy(ra, D)) + (await usedBy(rb, D)) + left, BOUGHT, 'nothing free, nothing lost');
});

test.run();
