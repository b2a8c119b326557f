// tier: peers; needs initdb mosquitto
/**
 * A device arriving at another router of its venue (docs/roaming.md), with nobody calling venue_claim: two sluice
 * daemons on a real mosquitto, the fleet's lease service on a real PostgreSQL 15, the pay page's own portal.js (on the
 * stand-in DOM) talking to the second router's real LAN endpoint from the device's address. The page's first question
 * (GET /session) is the router's cue to claim the session; while the device is still busy at the first router the
 * page says why nothing is sold, a purchase is refused, and the router keeps claiming by itself; once the device left
 * the first router the session moves with exactly what was left. Back at the first router, the phone's RFC 8908
 * question (GET /captive) alone brings it back. Invariant: usage at both ≤ what was bought; the session is never lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPage, type FakePage } from '../http/fake-dom.ts';
import type { DaemonLab } from '../daemon/harness.ts';
import { deviceIp, deviceRequest, lease, MiB, sleep, ticksOk, usedBy, venuePerTest } from './rig.ts';

const D = '02:00:00:00:5e:03';
const BOUGHT = 8n * BigInt(MiB);
const ELSEWHERE = 'Your session is active at another WiFi point of this venue';
const venues = venuePerTest(test);

const used = (lab: DaemonLab): Promise<bigint> => usedBy(lab, D);
const ticks = ticksOk;

/** The page's clock moves 2 s and its 1 s interval runs: what a customer's open page does by itself. */
async function pageWaits(page: FakePage): Promise<void> {
  page.advance(2000);
  page.fire(1000);
  await page.settle();
}

test('met at another router: claimed by itself, refused a sale while held, moved once the device left', async () => {
  const venue = await venues.start(['ra', 'rb'], [D], { http: true });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const [portA, portB] = [venue.ports.get('ra')!, venue.ports.get('rb')!];
  const ip = deviceIp(0);
  await ra.call('grant', { mac: D, bytes: Number(BOUGHT) });
  await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 30_000, 'gate open at ra');
  await ra.waitFor(async () => (await lease(venue.db, D))?.['holder'] === 'ra', 30_000, 'the lease at ra');
  const from = await ticks(ra);
  await ra.waitFor(async () => (await ticks(ra)) >= from + 2, 60_000, 'meter ticks at ra');

  // The device is still busy at ra (traffic every 200 ms) while its phone opens the pay page at rb.
  let busy = true;
  let sent = 0n;
  const traffic = (async () => {
    while (busy) {
      ra.portal.addTraffic(D, 64 * 1024, 0);
      sent += 64n * 1024n;
      await sleep(200);
    }
  })();
  const page = await loadPage({
    now: Date.now(),
    handler: async (path, init) => {
      const r = await deviceRequest(portB, ip, path, {
        ...(init.method !== undefined && { method: init.method }),
        ...(init.body !== undefined && { body: init.body }),
      });
      return { status: r.status, text: r.text };
    },
  });
  await rb.waitFor(
    async () => {
      if (page.byId('session').textContent.includes(ELSEWHERE)) return true;
      await pageWaits(page);
      await sleep(300);
      return false;
    },
    60_000,
    'the page says the session is active at another router',
  );
  assert.is(page.byId('session').hidden, false);
  assert.not.ok(rb.clientState(D) === 'Authenticated', 'no gate at rb');
  assert.is((await ra.session(D))['state'], 'ACTIVE', 'still served at ra');

  // A purchase at rb meanwhile (the free trial: one click on the page) is refused, nothing sold; the page says why.
  const trial = await deviceRequest(portB, ip, '/trial', {
    method: 'POST',
    body: JSON.stringify({ plan: 'trial', device: 'venue-test-device-01' }),
  });
  const refusal = JSON.parse(trial.text) as { error: { code: string } };
  assert.is(trial.status, 409, trial.text);
  assert.is(refusal.error.code, 'ERR_VENUE_HELD_ELSEWHERE');
  assert.ok(String(page.portal.errorText(trial.status, refusal)).startsWith(ELSEWHERE));
  assert.is((await rb.callStatus('session', { mac: D })).data?.['session'], undefined, 'nothing sold at rb');

  // The device leaves ra. Nobody touches rb or the page: rb's own claims move the session.
  busy = false;
  await traffic;
  const left = Date.now();
  await rb.waitFor(() => rb.clientState(D) === 'Authenticated', 60_000, 'gate open at rb');
  const leftToOpenMs = Date.now() - left;
  await ra.waitFor(async () => (await ra.session(D))['end_cause'] === 'moved', 30_000, 'ended moved at ra');
  const atRa = await used(ra);
  assert.is(atRa, sent, 'everything the device used at ra was billed there');
  const here = await rb.session(D);
  assert.is(BigInt(here['allotment'] as string), BOUGHT - atRa, 'exactly what was left');
  assert.equal(
    (here['payments'] as Array<Record<string, unknown>>).map((p) => [p['method'], p['amount']]),
    [['venue', '0']],
  );

  // The open page, at its next question, shows the session and says it moved here.
  await rb.waitFor(
    async () => {
      if (page.byId('message').textContent === 'Your session moved here: you are online.') return true;
      await pageWaits(page);
      return false;
    },
    30_000,
    'the page shows the session moved here',
  );

  // Some use at rb, then the device goes back to ra and idles at rb for the present window: the phone's RFC 8908
  // question at ra (GET /captive) is all it takes.
  const fromB = await ticks(rb);
  await rb.waitFor(async () => (await ticks(rb)) >= fromB + 2, 60_000, 'meter ticks at rb');
  rb.portal.addTraffic(D, MiB, 0);
  await rb.waitFor(async () => (await used(rb)) === BigInt(MiB), 30_000, 'usage at rb');
  await sleep(1500);
  if (ra.clientState(D) === undefined) ra.portal.addClient(D, ip);
  const met = Date.now();
  const captive = JSON.parse((await deviceRequest(portA, ip, '/captive')).text) as { captive: boolean };
  assert.is(captive.captive, true, 'captive until the session is back');
  await ra.waitFor(() => ra.clientState(D) === 'Authenticated', 60_000, 'gate open at ra again');
  const metToOpenMs = Date.now() - met;
  const back = await ra.session(D);
  assert.is(BigInt(back['allotment'] as string), BOUGHT - atRa - BigInt(MiB), 'what rb left');
  assert.is((back['venue'] as Record<string, unknown>)['epoch'], 3);
  assert.ok(atRa + (await used(rb)) <= BOUGHT, 'usage at both within what was bought');
  const [row] = await venue.db.query<{ n: string }>('SELECT count(*)::text AS n FROM venue_moves WHERE mac = $1', [D]);
  assert.is(row!.n, '2');
  const waits = 'present window 1 s: ra waits for it to pass';
  console.log(`# arrival: device left ra → gate open at rb ${leftToOpenMs} ms (${waits})`);
  console.log(`# arrival: GET /captive at ra → gate open there ${metToOpenMs} ms`);
});

test.run();
