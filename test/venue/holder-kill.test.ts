// tier: peers; needs initdb mosquitto
/**
 * The holder killed -9 at each point of a release (docs/roaming.md, "When the venue cannot agree"), with real
 * processes: two sluice daemons, a real mosquitto, the fleet's lease service on a real PostgreSQL 15. The gates' own
 * states are sampled all along (each router's portal: the device `Authenticated` or not), and the test asserts their
 * order: the next router opens only after the holder's gate closed, or after the holder's lease expired; the holder,
 * back, has the device's gate closed and its session ended `moved`; what the device passed at the holder is billed
 * there once (what both routers billed adds up to what was sold, or to it plus the overlap booked for the time the
 * lease moved on without the holder).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DaemonLab } from '../daemon/harness.ts';
import { killedInRelease, lease, MiB, sleep, ticksOk, usedBy, type Venue, venuePerTest } from './rig.ts';

const D = '02:00:00:00:5e:0c';
const BOUGHT = 8n * BigInt(MiB);
const TTL_MS = 8000;
const venues = venuePerTest(test);

const open = (lab: DaemonLab): boolean => lab.clientState(D) === 'Authenticated';

/** The pairs of gate states (the holder's, the next router's) in the order they were seen, each once in a row. */
function watchGates(ra: DaemonLab, rb: DaemonLab) {
  const seen: string[] = [];
  let running = true;
  let bothSince: number | null = null;
  let bothMs = 0;
  let failed: unknown = null;
  const loop = (async () => {
    while (running) {
      let pair: string;
      try {
        pair = `${open(ra) ? 'open' : 'closed'}/${open(rb) ? 'open' : 'closed'}`;
      } catch (err) {
        // A lab torn down under the sampler (its test failed on a step): the step's own error is the one to see.
        failed = err;
        return;
      }
      if (seen.at(-1) !== pair) seen.push(pair);
      if (pair === 'open/open') bothSince ??= performance.now();
      else if (bothSince !== null) {
        bothMs += performance.now() - bothSince;
        bothSince = null;
      }
      await sleep(10);
    }
  })();
  return {
    seen,
    async stop(): Promise<{ seen: string[]; bothMs: number }> {
      running = false;
      await loop;
      if (failed !== null) throw failed;
      return { seen, bothMs: Math.round(bothMs) };
    },
  };
}

/** A session of BOUGHT at `ra` with some usage, reported to the fleet; what the device passed there so far. */
async function sold(v: Venue, ra: DaemonLab): Promise<bigint> {
  await ra.call('grant', { mac: D, bytes: Number(BOUGHT) });
  await ra.waitFor(() => open(ra), 30_000, 'gate open at ra');
  await ra.waitFor(async () => (await lease(v.db, D))?.['state'] === 'held', 30_000, 'the lease registered');
  const from = await ticksOk(ra);
  await ra.waitFor(async () => (await ticksOk(ra)) >= from + 2, 60_000, 'a meter tick after the start');
  ra.portal.addTraffic(D, MiB, 256 * 1024);
  const n = BigInt(MiB + 256 * 1024);
  await ra.waitFor(async () => (await usedBy(ra, D)) === n, 30_000, 'usage billed');
  await ra.waitFor(async () => (await lease(v.db, D))?.['used'] === String(n), 30_000, 'usage reported');
  return n;
}

/** rb claims every half second (as a phone's requests there make it) until its gate opens. */
async function claimUntilOpen(rb: DaemonLab, timeoutMs: number): Promise<void> {
  await rb.waitFor(
    async () => {
      if (open(rb)) return true;
      await rb.call('venue_claim', { mac: D });
      await sleep(450);
      return false;
    },
    timeoutMs,
    'gate open at rb',
  );
}

const moves = (v: Venue) =>
  v.db.query<{ how: string; from_router: string; to_router: string; used: string; overlap: string | null }>(
    'SELECT how, from_router, to_router, used::text, overlap::text FROM venue_moves WHERE mac = $1 ORDER BY at',
    [D],
  );

/** ra back: its gate closed and its session ended `moved`, whatever it was doing when it was killed. */
async function restarted(ra: DaemonLab): Promise<void> {
  await ra.reconnectClient();
  await ra.startDaemon();
  await ra.waitFor(async () => (await ra.session(D))['end_cause'] === 'moved', 60_000, 'the session moved at ra');
  await ra.waitFor(() => !open(ra), 30_000, 'gate closed at ra');
}

test('killed after its close, before its reply: back within the lease, it answers; never open at both', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: 60_000 });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  let passed = await sold(venue, ra);
  await sleep(1500); // the device left ra
  // The bytes it passed after ra's last reading, then the kill the moment ra's portal closed its gate.
  ra.portal.addTraffic(D, 64 * 1024, 0);
  passed += 64n * 1024n;
  let killedAt: number | null = null;
  ra.afterPortalCall = (line) => {
    if (!line.startsWith('deauth') || killedAt !== null) return;
    killedAt = performance.now();
    ra.daemon?.kill('SIGKILL');
  };
  const gates = watchGates(ra, rb);
  const claiming = claimUntilOpen(rb, 120_000);
  await ra.waitFor(() => killedAt !== null, 60_000, 'the kill at the close');
  ra.afterPortalCall = undefined;
  await ra.stopDaemon('SIGKILL');
  assert.not.ok(open(ra), 'the close took effect at ra');
  await restarted(ra);
  await claiming;
  const { seen, bothMs } = await gates.stop();
  console.log(`killed at the close: gates ${seen.join(' → ')}; open at both ${bothMs} ms`);
  assert.not.ok(seen.includes('open/open'), `never open at both: ${seen.join(' → ')}`);
  assert.is(seen.at(-1), 'closed/open');
  const [move, ...more] = await moves(venue);
  assert.equal([move?.how, move?.from_router, move?.to_router, more.length], ['released', 'ra', 'rb', 0]);
  // The portal forgot the counters with its deauth, and ra died then: the bytes past ra's last reading were billed
  // and the session's end written to ra's journal before the deauth, so they are billed there, once. Nothing given
  // twice: rb gets at most what ra's session left, never less than what was bought less what the device passed at ra.
  const atRa = await usedBy(ra, D);
  const atRb = BigInt((await rb.session(D))['allotment'] as string);
  console.log(`  billed at ra ${atRa} of ${passed} passed there; moved to rb ${atRb}`);
  assert.is(atRa, passed, `billed at ra ${atRa} of ${passed} passed there, the bytes after its last reading too`);
  assert.ok(atRb <= BOUGHT - atRa && atRb >= BOUGHT - passed, `moved to rb ${atRb}`);
});

test('killed after its reply: the next router opens on it; back, the holder stays closed, billed once', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: 60_000 });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  let passed = await sold(venue, ra);
  await sleep(1500);
  ra.portal.addTraffic(D, 64 * 1024, 0);
  passed += 64n * 1024n;
  const gates = watchGates(ra, rb);
  const claiming = claimUntilOpen(rb, 60_000);
  await ra.waitFor(async () => (await lease(venue.db, D))?.['holder'] === 'rb', 60_000, 'the lease moved to rb');
  await ra.stopDaemon('SIGKILL');
  await claiming;
  rb.portal.addTraffic(D, MiB, 0);
  await restarted(ra);
  await rb.waitFor(async () => (await usedBy(rb, D)) === BigInt(MiB), 30_000, 'usage at rb');
  const { seen } = await gates.stop();
  console.log(`killed after the reply: gates ${seen.join(' → ')}`);
  assert.not.ok(seen.includes('open/open'), `never open at both: ${seen.join(' → ')}`);
  assert.is(await usedBy(ra, D), passed, 'billed at ra once, across its restart');
  assert.is(BigInt((await rb.session(D))['allotment'] as string), BOUGHT - passed);
  assert.is((await moves(venue)).length, 1);
});

/** The device busy at ra when rb claims; ra killed while its release waits for it to leave. What it passed at ra. */
async function killedInReleaseAt(v: Venue, ra: DaemonLab, rb: DaemonLab, passed: bigint): Promise<bigint> {
  passed += await killedInRelease(v, ra, rb, D);
  ra.portal.addTraffic(D, 32 * 1024, 0); // what it passes at ra's gate, ra down
  return passed + 32n * 1024n;
}

test('killed before its close, back within its lease (procd respawns it): it answers; never open at both', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: 60_000 });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const gates = watchGates(ra, rb);
  const passed = await killedInReleaseAt(venue, ra, rb, await sold(venue, ra));
  await ra.reconnectClient();
  await ra.startDaemon();
  await claimUntilOpen(rb, 120_000);
  await ra.waitFor(async () => (await ra.session(D))['end_cause'] === 'moved', 60_000, 'the session moved at ra');
  const { seen } = await gates.stop();
  console.log(`killed before the close, back within the lease: gates ${seen.join(' → ')}`);
  assert.not.ok(seen.includes('open/open'), `never open at both: ${seen.join(' → ')}`);
  const [move, ...more] = await moves(venue);
  assert.equal([move?.how, move?.from_router, move?.to_router, more.length], ['released', 'ra', 'rb', 0]);
  assert.is(await usedBy(ra, D), passed, 'everything ra passed billed at ra, once');
  assert.is(BigInt((await rb.session(D))['allotment'] as string), BOUGHT - passed, 'the rest moved to rb');
});

test('killed before its close, down past its lease: open at both only from the expiry to its restart', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: TTL_MS });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const reported = await sold(venue, ra);
  const gates = watchGates(ra, rb);
  const passed = await killedInReleaseAt(venue, ra, rb, reported);
  await claimUntilOpen(rb, 120_000);
  const [move] = await moves(venue);
  assert.equal([move?.how, move?.from_router, move?.to_router], ['expired', 'ra', 'rb'], 'moved by the expiry');
  assert.ok(open(ra), 'ra down: its portal still passes the device');
  await restarted(ra);
  await ra.waitFor(
    async () => (await venue.db.query('SELECT 1 FROM venue_moves WHERE revoked_at IS NOT NULL')).length === 1,
    30_000,
    'the revoke booked',
  );
  const { seen, bothMs } = await gates.stop();
  console.log(`killed before the close, down past the lease: gates ${seen.join(' → ')}; open at both ${bothMs} ms`);
  // Open at both only once rb opened on the expiry, until ra's restart was heard and revoked it.
  assert.equal(seen.slice(-2), ['open/open', 'closed/open'], seen.join(' → '));
  assert.is(seen.indexOf('closed/open'), seen.length - 1, `ra never reopened after: ${seen.join(' → ')}`);
  const [booked] = await moves(venue);
  const overlap = BigInt(booked!.overlap!);
  assert.is(await usedBy(ra, D), passed, 'everything ra passed billed at ra, once');
  assert.is(overlap, passed - BigInt(booked!.used), 'the overlap is what ra passed past its last report');
  assert.ok(BigInt(booked!.used) >= reported);
});

test.run();
