// tier: peers; needs initdb mosquitto
/**
 * A free trial is the venue's even when two routers are asked for it in the same second (docs/roaming.md, "Free
 * trials"), with real processes: two sluice daemons on a real mosquitto, the fleet's lease service on a real
 * PostgreSQL 15. Three devices each ask `ra` and `rb` for the trial at once (the pay page's POST /trial): each gets
 * exactly one, the other router refuses it, and the venue remembers one trial per device. A trial the venue held for
 * a router that never gave it (here its own `trial_limit` refused it; a router that died before its sale is the same
 * to the fleet: no `started` comes) is refused elsewhere only until the hold lapses, then given there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deviceIp, deviceRequest, sleep, venuePerTest } from './rig.ts';
import { waitFor } from '../fleet/rig.ts';

const DEVICES = ['02:00:00:00:5e:41', '02:00:00:00:5e:42', '02:00:00:00:5e:43'];
const venues = venuePerTest(test);

const trial = (port: number, device: number) =>
  deviceRequest(port, deviceIp(device), '/trial', { method: 'POST', body: JSON.stringify({ plan: 'trial' }) });

type Refusal = { error: { code: string; message: string; next_at?: number } };
const codeOf = (r: { text: string }): string => (JSON.parse(r.text) as Refusal).error.code;

test('three devices each ask ra and rb for the trial at once: one trial each, the other router refuses', async () => {
  const venue = await venues.start(['ra', 'rb'], DEVICES, { http: true });
  const ports = [venue.ports.get('ra')!, venue.ports.get('rb')!];
  const asked = await Promise.all(DEVICES.flatMap((_, i) => ports.map((port) => trial(port, i))));
  for (let i = 0; i < DEVICES.length; i++) {
    const [atA, atB] = [asked[2 * i]!, asked[2 * i + 1]!];
    const given = [atA, atB].filter((r) => r.status === 200);
    assert.is(given.length, 1, `${DEVICES[i]}: one trial, not ${given.length} (${atA.text} / ${atB.text})`);
    const other = atA.status === 200 ? atB : atA;
    // Refused as given elsewhere: held for the other router's sale, or (its sale heard already) held there.
    const code = codeOf(other);
    assert.ok(code === 'ERR_TRIAL_USED' || code === 'ERR_VENUE_HELD_ELSEWHERE', other.text);
    const [giver, refuser] = atA.status === 200 ? ['ra', 'rb'] : ['rb', 'ra'];
    const live = await venue.routers.get(giver)!.session(DEVICES[i]!);
    assert.is(live['state'], 'ACTIVE');
    const none = await venue.routers.get(refuser)!.callStatus('session', { mac: DEVICES[i]! });
    assert.ok(none.status !== 0 || none.data?.['session'] === undefined, `none at ${refuser}: ${JSON.stringify(none)}`);
  }
  // The venue remembers one trial of each device, at the router that gave it.
  await waitFor(
    async () =>
      (await venue.db.query(`SELECT 1 FROM venue_trials WHERE mac = ANY($1)`, [DEVICES])).length === DEVICES.length,
    30_000,
    'the three trials remembered',
  );
});

test('a trial held for ra that ra never gave: refused at rb until the hold lapses, then given there', async () => {
  const HOLD_MS = 20_000;
  const venue = await venues.start(['ra', 'rb'], DEVICES.slice(0, 2), {
    http: true,
    trialLimit: 1,
    trialHoldMs: HOLD_MS,
  });
  const [portA, portB] = [venue.ports.get('ra')!, venue.ports.get('rb')!];
  assert.is((await trial(portA, 1)).status, 200, "the other device's trial: ra's one of the day");
  // The venue holds the trial of the first device for ra, then ra's own trial_limit refuses it: no sale, no `started`.
  const heldAt = Date.now();
  const atA = await trial(portA, 0);
  assert.is(codeOf(atA), 'ERR_TRIAL_LIMIT', atA.text);
  const during = await trial(portB, 0);
  assert.is(during.status, 403, during.text);
  const refused = JSON.parse(during.text) as Refusal;
  assert.is(refused.error.code, 'ERR_TRIAL_USED');
  assert.ok(refused.error.message.includes('being given at another of its routers'), refused.error.message);
  // Free again when the hold ends, not a trial_every (a day) later.
  const nextAt = Number(refused.error.next_at) * 1000;
  assert.ok(nextAt > heldAt && nextAt <= Date.now() + HOLD_MS + 1000, `next_at the hold's end: ${nextAt - heldAt} ms`);
  await sleep(nextAt - Date.now() + 1000);
  const after = await trial(portB, 0);
  assert.is(after.status, 200, after.text);
  assert.is((await venue.routers.get('rb')!.session(DEVICES[0]!))['state'], 'ACTIVE');
});

test.run();
