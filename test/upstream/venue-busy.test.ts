// tier: fast
/**
 * The fleet's `busy` answer (docs/mqtt.md, "Roaming within a venue"): a claim the lease service refused because this
 * router had too many waiting there is taken as the fleet unreachable at once — the sale goes on as it would without
 * the fleet, a trial is refused as unreachable — not refused as an answer this router does not know.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VenueRoaming, type VenueRoamingDeps } from '../../src/upstream/venue-roaming.ts';

const D = '02:00:00:00:5e:01';
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test("a 'busy' answer: the claim's device is as if the fleet were unreachable", () => {
  const claims: Array<Record<string, unknown>> = [];
  const sessions = {
    byMac: () => undefined,
    on: () => () => undefined,
  } as unknown as VenueRoamingDeps['sessions'];
  const roaming = new VenueRoaming({
    sessions,
    publish: (body) => (claims.push(body), true),
    settings: () => ({ venue: 'hall', presentWindowMs: 1000 }),
    log: quiet,
  });
  assert.is(roaming.claim(D).state, 'asking');
  assert.is(claims.length, 1);
  const error = { code: 'ERR_VENUE_BUSY', message: 'over 64 claims of this router waiting at the fleet' };
  assert.equal(roaming.answer({ mac: D, venue: 'hall', state: 'busy', error, trials: {} }), { ok: true });
  assert.is(roaming.stateOf(D)?.state, 'unreachable');
  assert.throws(() => roaming.answer({ mac: D, venue: 'hall', state: 'maybe' }), /state must be/);
  roaming.close();
});

test.run();
