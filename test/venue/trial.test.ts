// tier: peers; needs initdb mosquitto
/**
 * A free trial is the venue's, not each router's (docs/roaming.md, "Free trials"), with real processes: two sluice
 * daemons on a real mosquitto, the fleet's lease service on a real PostgreSQL 15. A device takes the trial at `ra`
 * (the pay page's POST /trial), its session ends there; at `rb` the same trial is refused ERR_TRIAL_USED with
 * `next_at`, nothing granted. `rb` cut from the broker: another device's trial is refused ERR_TRIAL_VENUE_UNREACHABLE
 * (the venue cannot say), while a paid sale (a printed voucher) to it is made as before.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deviceIp, deviceRequest, lease, venuePerTest } from './rig.ts';

const D = '02:00:00:00:5e:31';
const E = '02:00:00:00:5e:32';
const venues = venuePerTest(test);
const PLAN =
  `\nconfig pricing 'data'\n\toption metric 'bytes'\n\toption step_size '1048576'\n\toption price_per_step '1000'` +
  `\n\toption max_steps '64'\n`;

const trial = (port: number, device: number) =>
  deviceRequest(port, deviceIp(device), '/trial', { method: 'POST', body: JSON.stringify({ plan: 'trial' }) });

type Refusal = { error: { code: string; message: string; next_at?: number } };

test('a trial taken at ra is not given again at rb; with the venue unreachable, no trial but paid sales', async () => {
  const venue = await venues.start(['ra', 'rb'], [D, E], { http: true, cuttable: ['rb'], config: PLAN });
  const [ra, rb] = [venue.routers.get('ra')!, venue.routers.get('rb')!];
  const [portA, portB] = [venue.ports.get('ra')!, venue.ports.get('rb')!];

  const first = await trial(portA, 0);
  assert.is(first.status, 200, first.text);
  const trialAt = Date.now();
  // Its lease is registered from the same `started` message that the venue remembers the trial by.
  await ra.waitFor(async () => (await lease(venue.db, D))?.['holder'] === 'ra', 30_000, 'the trial registered');
  // The trial over at ra (its session ended there): nothing of it is held anywhere in the venue.
  await ra.call('terminate', { mac: D });
  await ra.waitFor(async () => (await lease(venue.db, D))?.['state'] === 'ended', 30_000, 'the lease ended');

  const again = await trial(portB, 0);
  assert.is(again.status, 403, again.text);
  const refused = JSON.parse(again.text) as Refusal;
  assert.is(refused.error.code, 'ERR_TRIAL_USED');
  const nextAt = Number(refused.error.next_at);
  assert.ok(Math.abs(nextAt - (trialAt / 1000 + 86_400)) < 120, `next_at a day after the trial: ${nextAt}`);
  assert.ok(refused.error.message.includes('in venue hall'), refused.error.message);
  const atB = await rb.callStatus('session', { mac: D });
  assert.ok(atB.status !== 0 || atB.data?.['session'] === undefined, `nothing granted at rb: ${JSON.stringify(atB)}`);

  // The venue unreachable from rb: no trial for a device it cannot ask about, a paid sale as before.
  await venue.relays.get('rb')!.cut();
  const blind = await trial(portB, 1);
  assert.is(blind.status, 503, blind.text);
  assert.is((JSON.parse(blind.text) as Refusal).error.code, 'ERR_TRIAL_VENUE_UNREACHABLE');
  const made = await rb.call('voucher_create', { plan: 'data', count: 1, steps: 2 });
  const [code] = made.codes as string[];
  const sold = await rb.call('purchase', { mac: E, payment: { method: 'voucher', code: code! } });
  assert.is((sold.session as Record<string, unknown>)['state'], 'ACTIVE');
});

test.run();
