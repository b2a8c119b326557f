// tier: peers; needs initdb mosquitto
/**
 * Roaming when the venue cannot agree (docs/roaming.md), with real processes: two sluice daemons, a real mosquitto,
 * the fleet's lease service on a real PostgreSQL 15. The holder killed -9: the lease moves only after it expired, with
 * what its last report said, and the holder, back, stops serving it (the overlap is booked). The fleet down: the
 * device keeps its session where it is, the other router sells nothing and says the venue is unreachable; once the
 * fleet is back the handover completes. Each: usage of both routers ≤ what was bought + the stated overlap; the
 * session is never lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DaemonLab } from '../daemon/harness.ts';
import { lease, MiB, sleep, startService, ticksOk, usedBy, type Venue, venuePerTest } from './rig.ts';

const D = '02:00:00:00:5e:02';
const BOUGHT = 8n * BigInt(MiB);
const venues = venuePerTest(test);

const used = (lab: DaemonLab): Promise<bigint> => usedBy(lab, D);

/** A session at `lab` with some usage, reported to the fleet. */
async function sold(v: Venue, lab: DaemonLab): Promise<bigint> {
  await lab.call('grant', { mac: D, bytes: Number(BOUGHT) });
  await lab.waitFor(() => lab.clientState(D) === 'Authenticated', 30_000, 'gate open');
  await lab.waitFor(async () => (await lease(v.db, D))?.['state'] === 'held', 30_000, 'the lease registered');
  const ticks = () => ticksOk(lab);
  const from = await ticks();
  await lab.waitFor(async () => (await ticks()) >= from + 2, 60_000, 'a meter tick after the start');
  lab.portal.addTraffic(D, MiB, 256 * 1024);
  const n = BigInt(MiB + 256 * 1024);
  await lab.waitFor(async () => (await used(lab)) === n, 30_000, 'usage billed');
  await lab.waitFor(async () => (await lease(v.db, D))?.['used'] === String(n), 30_000, 'usage reported');
  return n;
}

/** Claims at `lab` every half second until its gate opens; the states it was told on the way. */
async function claimUntilOpen(lab: DaemonLab, timeoutMs: number): Promise<string[]> {
  const states: string[] = [];
  await lab.waitFor(
    async () => {
      if (lab.clientState(D) === 'Authenticated') return true;
      const s = String((await lab.call('venue_claim', { mac: D }))['state']);
      if (states.at(-1) !== s) states.push(s);
      await sleep(450);
      return false;
    },
    timeoutMs,
    'gate open after claims',
  );
  return states;
}

test('the holder killed -9: the lease moves once expired, with its last report; back, it stops serving', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { ttlMs: 8000 });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const reported = await sold(venue, ra);
  await ra.stopDaemon('SIGKILL');
  const states = await claimUntilOpen(rb, 90_000);
  assert.ok(states.includes('releasing') || states.includes('held'), `told it was held first: ${states}`);
  const here = await rb.session(D);
  assert.is(BigInt(here['allotment'] as string), BOUGHT - reported, 'what the last report left');
  const [move] = await venue.db.query<Record<string, unknown>>('SELECT * FROM venue_moves WHERE mac = $1', [D]);
  assert.equal([move!['how'], move!['from_router'], move!['to_router']], ['expired', 'ra', 'rb']);

  // ra comes back with the session in its journal: the fleet revokes it, and books what it served past its report.
  await ra.startDaemon();
  await ra.waitFor(async () => (await ra.session(D))['end_cause'] === 'moved', 60_000, 'revoked at ra');
  await ra.waitFor(() => ra.clientState(D) !== 'Authenticated', 30_000, 'gate closed at ra');
  await ra.waitFor(
    async () => (await venue.db.query('SELECT 1 FROM venue_moves WHERE revoked_at IS NOT NULL')).length === 1,
    30_000,
    'the revoke booked',
  );
  const [after] = await venue.db.query<{ overlap: string }>('SELECT overlap::text FROM venue_moves WHERE mac = $1', [
    D,
  ]);
  const overlap = BigInt(after!.overlap);
  rb.portal.addTraffic(D, 2 * MiB, 0);
  await rb.waitFor(async () => (await used(rb)) === BigInt(2 * MiB), 30_000, 'usage at rb');
  const total = (await used(ra)) + (await used(rb));
  assert.ok(total <= BOUGHT + overlap, `usage ${total} ≤ bought ${BOUGHT} + overlap ${overlap}`);
  assert.is(await used(ra), reported + overlap, 'the overlap is what ra served past its last report');
});

test('the fleet down: the session stays where it is, nothing is sold again; back, the handover completes', async () => {
  const venue = await venues.start(['ra', 'rb'], [D]);
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const atRa = await sold(venue, ra);
  await venue.service.stop();
  await sleep(1500); // the device left ra: no traffic there for the present window
  await rb.call('venue_claim', { mac: D });
  await rb.waitFor(
    async () => (await rb.call('venue_claim', { mac: D }))['state'] === 'unreachable',
    30_000,
    'rb says the venue does not answer',
  );
  assert.is((await ra.session(D))['state'], 'ACTIVE', 'still held at ra');
  assert.ok(ra.clientState(D) === 'Authenticated', 'still served at ra');
  assert.not.ok(rb.clientState(D) === 'Authenticated', 'no free access at rb');
  assert.is((await rb.callStatus('session', { mac: D })).data?.['session'], undefined, 'nothing sold at rb');

  venue.service = await startService(venue, ['ra', 'rb'], 60_000);
  await claimUntilOpen(rb, 60_000);
  const here = await rb.session(D);
  assert.is(BigInt(here['allotment'] as string), BOUGHT - (await used(ra)), 'exactly what was left');
  assert.is((await ra.session(D))['end_cause'], 'moved');
  assert.ok((await used(ra)) >= atRa && (await used(ra)) + (await used(rb)) <= BOUGHT);
});

test.run();
