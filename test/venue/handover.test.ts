// tier: peers; needs initdb mosquitto
/**
 * Roaming within a venue (docs/roaming.md) with real processes: two sluice daemons on a real mosquitto, the fleet's
 * lease service on a real PostgreSQL 15. A session bought at one router follows its device to the other with exactly
 * what was left; while the device is still active where it is, a claim elsewhere (a copy of its MAC) gets nothing.
 * Invariant: the usage of both routers adds up to at most what was bought; the session is never lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lease, MiB, ticksOk, venuePerTest } from './rig.ts';
import type { DaemonLab } from '../daemon/harness.ts';

const D = '02:00:00:00:5e:01';
const venues = venuePerTest(test);

test('plain handover: the session follows its device with what was left; a copy of its MAC gets nothing', async () => {
  const venue = await venues.start(['ra', 'rb'], [D]);
  const ra = venue.routers.get('ra')!;
  const rb = venue.routers.get('rb')!;
  const db = venue.db;
  await ra.call('grant', { mac: D, bytes: 8 * MiB });
  await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 30_000, 'gate open at ra');
  await ra.waitFor(async () => (await lease(db, D))?.['holder'] === 'ra', 30_000, 'the lease registered at ra');

  // Traffic at ra; then, while the device is still active there, rb's claim (a copy of its MAC) gets nothing.
  const ticks = () => ticksOk(ra);
  const from = await ticks();
  await ra.waitFor(async () => (await ticks()) >= from + 2, 60_000, 'a meter tick after the start');
  ra.portal.addTraffic(D, MiB, 256 * 1024);
  await ra.waitFor(async () => (await ra.session(D)).used === String(MiB + 256 * 1024), 30_000, 'usage at ra');
  // The device stays busy at ra (traffic every 200 ms): ra holds the release, then refuses it.
  let busy = true;
  let sent = BigInt(MiB + 256 * 1024);
  const traffic = (async () => {
    while (busy) {
      ra.portal.addTraffic(D, 16 * 1024, 0);
      sent += 16n * 1024n;
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  await rb.call('venue_claim', { mac: D });
  await rb.waitFor(
    async () => (await rb.call('venue_claim', { mac: D }))['state'] === 'held',
    30_000,
    'rb told the session is held at ra',
  );
  assert.is((await rb.call('venue_claim', { mac: D }))['holder'], 'ra');
  assert.is((await ra.session(D)).state, 'ACTIVE', 'still served at ra');
  assert.is((await lease(db, D))?.['holder'], 'ra');
  assert.not.ok(rb.clientState(D) === 'Authenticated', 'no gate at rb');
  busy = false;
  await traffic;
  await ra.waitFor(async () => (await ra.session(D)).used === String(sent), 30_000, 'all usage at ra billed');

  // The device leaves ra (no traffic there for the present window) and appears at rb.
  await new Promise((r) => setTimeout(r, 1500));
  const usedAtRa = BigInt((await ra.session(D)).used as string);
  const asked = Date.now();
  await rb.call('venue_claim', { mac: D });
  await rb.waitFor(() => rb.clientState(D) === 'Authenticated', 30_000, 'gate open at rb');
  const tookMs = Date.now() - asked;
  const atRa = await ra.call('session', { mac: D });
  const left = (atRa.session as Record<string, unknown>)!;
  assert.is(left['state'], 'TERMINATED');
  assert.is(left['end_cause'], 'moved');
  await ra.waitFor(() => ra.clientState(D) !== 'Authenticated', 30_000, 'gate closed at ra');
  const here = await rb.session(D);
  assert.is(here['state'], 'ACTIVE');
  assert.is(here['metric'], 'bytes');
  assert.is(BigInt(here['allotment'] as string), 8n * BigInt(MiB) - usedAtRa, 'exactly what was left');
  const v = here['venue'] as Record<string, unknown>;
  assert.is(v['name'], 'hall');
  assert.is(v['from'], 'ra');
  assert.is(v['epoch'], 2);
  const payments = here['payments'] as Array<Record<string, unknown>>;
  assert.equal([payments[0]!['method'], payments[0]!['amount']], ['venue', '0'], 'no second sale');

  await rb.waitFor(async () => (await lease(db, D))?.['state'] === 'held', 20_000, 'lease held at rb');
  const row = (await lease(db, D))!;
  assert.equal([row['holder'], row['epoch'], row['holder_session']], ['rb', 2, here['id']]);
  const moves = await db.query<{ from_router: string; to_router: string; how: string; remaining: string }>(
    'SELECT from_router, to_router, how, remaining::text FROM venue_moves WHERE mac = $1',
    [D],
  );
  assert.equal(
    moves.map((m) => [m.from_router, m.to_router, m.how, m.remaining]),
    [['ra', 'rb', 'released', String(8n * BigInt(MiB) - usedAtRa)]],
  );

  // Usage at rb: both routers together never pass what was bought.
  const fromB = ((await rb.call('stats')).meter as { ticks_ok: number }).ticks_ok;
  await rb.waitFor(
    async () => ((await rb.call('stats')).meter as { ticks_ok: number }).ticks_ok >= fromB + 2,
    60_000,
    'a tick at rb',
  );
  rb.portal.addTraffic(D, 2 * MiB, 0);
  await rb.waitFor(async () => (await rb.session(D)).used === String(2 * MiB), 30_000, 'usage at rb');
  const total = usedAtRa + BigInt((await rb.session(D)).used as string);
  assert.ok(total <= 8n * BigInt(MiB), `usage ${total} within what was bought`);
  console.log(`# handover: claim to gate open at rb ${tookMs} ms (the machine's load counts in it)`);
});

test('flip-flop: back and forth, each router gets what the other left, the sum stays bought', async () => {
  const venue = await venues.start(['ra', 'rb'], [D]);
  const labs = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const bought = 8n * BigInt(MiB);
  await labs[0]!.call('grant', { mac: D, bytes: Number(bought) });
  await labs[0]!.waitFor(async () => (await lease(venue.db, D))?.['state'] === 'held', 30_000, 'the lease');
  let spent = 0n;
  for (let hop = 0; hop < 4; hop++) {
    const [here, next] = [labs[hop % 2]!, labs[(hop + 1) % 2]!];
    await here.waitFor(() => here.clientState(D) === 'Authenticated', 30_000, `gate open, hop ${hop}`);
    const ticks = () => ticksOk(here);
    const from = await ticks();
    await here.waitFor(async () => (await ticks()) >= from + 2, 60_000, 'a tick after the open');
    here.portal.addTraffic(D, 512 * 1024, 0);
    const before = BigInt((await here.session(D)).allotment as string);
    await here.waitFor(async () => (await here.session(D)).used === String(512 * 1024), 30_000, `usage, hop ${hop}`);
    spent += BigInt((await here.session(D)).used as string);
    await new Promise((r) => setTimeout(r, 1500));
    // The device arrives: the portal there lists it again (its earlier deauth there dropped it).
    if (next.clientState(D) === undefined) next.portal.addClient(D, '10.0.0.20');
    await next.waitFor(
      async () => {
        if (next.clientState(D) === 'Authenticated') return true;
        await next.call('venue_claim', { mac: D });
        await new Promise((r) => setTimeout(r, 300));
        return false;
      },
      60_000,
      `handover ${hop}`,
    );
    const arrived = await next.session(D);
    assert.is(BigInt(arrived['allotment'] as string), before - BigInt(512 * 1024), `exactly what was left, hop ${hop}`);
    assert.is((arrived['venue'] as Record<string, unknown>)['epoch'], hop + 2);
    assert.is((await here.call('session', { mac: D })).session!['end_cause' as never], 'moved');
  }
  assert.is(spent, 4n * 512n * 1024n);
  assert.ok(spent + BigInt((await labs[0]!.session(D)).allotment as string) === bought, 'nothing made, nothing lost');
  const moves = await venue.db.query<{ epoch: number }>('SELECT epoch FROM venue_moves WHERE mac = $1', [D]);
  assert.equal(moves.map((m) => m.epoch).sort(), [2, 3, 4, 5]);
});

test("what moves is the session's own: its speed tier, devices, user, plan and data deadline", async () => {
  // Both routers sell the plan; the figures rb opens with come from ra's session, not from rb's configuration.
  const plan =
    `\nconfig pricing 'fast'\n\toption metric 'bytes'\n\toption step_size '1048576'\n\toption price_per_step '1000'` +
    `\n\toption rate_down '4mbit'\n\toption rate_up '1mbit'\n`;
  const venue = await venues.start(['ra', 'rb'], [D], { config: plan });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const granted = await ra.call('grant', {
    mac: D,
    bytes: 8 * MiB,
    seconds: 86_400,
    plan: 'fast',
    devices: 3,
    user: 'room-12',
  });
  const sold = granted.session as Record<string, unknown>;
  await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 30_000, 'gate open at ra');
  await ra.call('change', { mac: D, rate_down: '6mbit' }); // the session's tier now, no longer its plan's
  await ra.waitFor(async () => (await lease(venue.db, D))?.['holder'] === 'ra', 30_000, 'the lease at ra');
  await new Promise((r) => setTimeout(r, 1500));
  await rb.waitFor(
    async () => {
      if (rb.clientState(D) === 'Authenticated') return true;
      await rb.call('venue_claim', { mac: D });
      await new Promise((r) => setTimeout(r, 300));
      return false;
    },
    60_000,
    'the session moved to rb',
  );
  const here = await rb.session(D);
  const pick = (s: Record<string, unknown>) =>
    ['rate_down', 'rate_up', 'max_devices', 'user', 'plan', 'expires_at'].map((k) => s[k]);
  assert.equal(pick(here), [6_000_000, 1_000_000, 3, 'room-12', 'fast', sold['expires_at']]);
  assert.ok(typeof sold['expires_at'] === 'number', 'the data session has a deadline');
  assert.is((await ra.call('session', { mac: D })).session!['end_cause' as never], 'moved');
});

test('a router the fleet lists in another venue, or not at all, gets nothing by claiming', async () => {
  // All three say they are in the venue; the fleet's venues file puts rb in another one and does not list rc.
  const venue = await venues.start(['ra', 'rb', 'rc'], [D], { listed: { rb: 'annex', rc: '' } });
  const [ra, rb, rc] = ['ra', 'rb', 'rc'].map((n) => venue.routers.get(n)!) as [DaemonLab, DaemonLab, DaemonLab];
  await ra.call('grant', { mac: D, bytes: 8 * MiB });
  await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 30_000, 'gate open at ra');
  await ra.waitFor(async () => (await lease(venue.db, D))?.['state'] === 'held', 30_000, 'the lease at ra');
  // The device is idle at ra past the present window: a claim from a router of the venue would move it now.
  await new Promise((r) => setTimeout(r, 1500));
  for (const r of [rb, rc]) await r.call('venue_claim', { mac: D });
  // Their first claims and the ones they make again by themselves (every 2 s) all reach the fleet and are refused.
  await ra.waitFor(async () => venue.service.stats()['refused']! >= 4, 60_000, 'four claims refused');
  for (const r of [rb, rc]) {
    assert.not.ok(r.clientState(D) === 'Authenticated', 'no gate at a stranger');
    const none = await r.call('session', { mac: D }).then(
      (x) => x['session'] ?? null,
      () => null,
    );
    assert.is(none, null, 'no session at a stranger');
  }
  assert.is((await ra.session(D)).state, 'ACTIVE', 'still served at ra');
  const row = (await lease(venue.db, D))!;
  assert.equal([row['holder'], row['epoch'], row['state']], ['ra', 1, 'held']);
  assert.equal(await venue.db.query('SELECT 1 FROM venue_moves WHERE mac = $1', [D]), [], 'no move');
});

test('traffic the holder has not read yet is billed there before it lets go: never free in the handover', async () => {
  // ra reads its counters every 30 s only: the device's last megabyte there is unread when rb claims it.
  const venue = await venues.start(['ra', 'rb'], [D], { pollInterval: { ra: 30 } });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const bought = 8n * BigInt(MiB);
  await ra.call('grant', { mac: D, bytes: Number(bought) });
  await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 30_000, 'gate open at ra');
  await ra.waitFor(async () => (await lease(venue.db, D))?.['holder'] === 'ra', 30_000, 'the lease at ra');
  await new Promise((r) => setTimeout(r, 1500)); // past the present window: only the unread traffic says it is there
  ra.portal.addTraffic(D, MiB, 0);
  await rb.waitFor(
    async () => {
      if (rb.clientState(D) === 'Authenticated') return true;
      await rb.call('venue_claim', { mac: D });
      await new Promise((r) => setTimeout(r, 300));
      return false;
    },
    60_000,
    'the session moved to rb',
  );
  const atRa = BigInt((await ra.session(D)).used as string);
  assert.is(atRa, BigInt(MiB), 'the unread megabyte was billed at ra');
  assert.is(BigInt((await rb.session(D)).allotment as string), bought - atRa, 'rb got what was left after it');
});

test("bytes passed after the holder's last reading are billed there, in its session and the reply", async () => {
  // ra reads its counters every 30 s: the release's own reading is the last before the close. The device passes 8 KiB
  // right after it (the portal answered that listing; no tick reads it again); openNDS's deauth deletes its counters.
  const venue = await venues.start(['ra', 'rb'], [D], { pollInterval: { ra: 30 } });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const bought = 8n * BigInt(MiB);
  const tail = 8192;
  await ra.call('grant', { mac: D, bytes: Number(bought) });
  await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 30_000, 'gate open at ra');
  await ra.waitFor(async () => (await lease(venue.db, D))?.['holder'] === 'ra', 30_000, 'the lease at ra');
  await new Promise((r) => setTimeout(r, 1500)); // idle past the present window: one reading decides the release
  let passed = false;
  ra.afterPortalCall = (line, model) => {
    if (passed || line !== 'json') return;
    passed = model.addTraffic(D, tail - 1024, 1024);
  };
  await rb.waitFor(
    async () => {
      if (rb.clientState(D) === 'Authenticated') return true;
      await rb.call('venue_claim', { mac: D });
      await new Promise((r) => setTimeout(r, 300));
      return false;
    },
    60_000,
    'the session moved to rb',
  );
  assert.ok(passed, 'the device passed its bytes after a listing at ra');
  const atRa = await ra.session(D);
  assert.is(atRa['end_cause'], 'moved');
  assert.is(BigInt(atRa['used'] as string), BigInt(tail), 'billed at ra, the session ended with them');
  assert.is(BigInt((await rb.session(D)).allotment as string), bought - BigInt(tail), "the reply's figures had them");
  const moves = await venue.db.query<{ remaining: string }>('SELECT remaining::text FROM venue_moves WHERE mac = $1', [
    D,
  ]);
  assert.equal(
    moves.map((m) => m.remaining),
    [String(bought - BigInt(tail))],
  );
});

test.run();
