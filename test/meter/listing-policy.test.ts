// tier: fast
// When a meter on the kernel's counters lists the portal (meter/listing-policy.ts): first, after sluice's changes, a
// portal restart, unknown or moved counters, once per stalled paying client; otherwise only the safety net, whose
// period stretches with the listing's cost; never two listings closer than the minimum interval.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ListingPolicy } from '../../src/meter/listing-policy.ts';

const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';

test('first listing at once; then only the safety net, 60 s after the last', () => {
  const p = new ListingPolicy();
  assert.is(p.due(0), 'first');
  p.listed(0, 50);
  for (const t of [1, 1000, 30_000, 59_999]) assert.is(p.due(t), undefined, `t=${t}`);
  assert.is(p.due(60_000), 'safety-net');
  assert.is(p.nextAt(), 60_000);
});

test('the safety net and a stall wait for a quiet moment after a gate opened, but not past their bound', () => {
  const p = new ListingPolicy({ quietMs: 5000, maxQuietWaitMs: 60_000 });
  p.listed(0, 50);
  p.gateOpened(58_000);
  assert.is(p.due(60_000), undefined, 'a purchase 2 s ago: the net waits');
  assert.is(p.nextAt(), 63_000);
  assert.is(p.due(63_000), 'safety-net');
  // Purchases one after another: held at most maxQuietWaitMs past when it fell due.
  for (let t = 58_000; t <= 130_000; t += 2000) p.gateOpened(t);
  assert.is(p.due(119_999), undefined);
  assert.is(p.due(120_000), 'safety-net');
  assert.is(p.nextAt(), 120_000);
  // A reason a customer waits for is not held back (a deauth's change).
  p.listed(120_000, 50);
  p.gateOpened(121_500);
  p.changed();
  assert.is(p.due(121_500), 'changed');
  // A stall waits as the net does.
  p.listed(122_000, 50);
  p.afterTick(0, 0, [A]);
  p.gateOpened(136_000);
  assert.is(p.due(137_000), undefined);
  assert.is(p.due(141_000), 'stalled');
});

test(
  'the safety net costs at most 1/costFactor of the time: ' + 'a listing that took 3 s is not repeated within 300 s',
  () => {
    const p = new ListingPolicy();
    p.listed(0, 3000);
    assert.is(p.due(60_000), undefined);
    assert.is(p.due(299_999), undefined);
    assert.is(p.due(300_000), 'safety-net');
  },
);

test(
  "sluice's own changes, a restarted portal, unknown and moved counters: listed, a burst of them once, after the " +
    'minimum interval',
  () => {
    const p = new ListingPolicy({ minIntervalMs: 1000 });
    p.portalIdentity('8:100');
    p.listed(0, 10);
    p.changed();
    p.changed();
    assert.is(p.due(500), undefined, 'not within the minimum interval');
    assert.is(p.due(1000), 'changed');
    p.listed(1000, 10);
    assert.is(p.due(2500), undefined, 'one listing answered both');
    p.portalIdentity('8:100');
    assert.is(p.due(2500), undefined, 'the same socket');
    p.portalIdentity(undefined);
    assert.is(p.due(2500), undefined, 'a socket missing for a moment says nothing by itself');
    p.portalIdentity('8:177');
    assert.is(p.due(2500), 'portal-restart');
    p.listed(2500, 10);
    p.afterTick(1, 0, []);
    assert.is(p.due(3500), 'unlisted');
    p.listed(3500, 10);
    p.afterTick(0, 1, []);
    assert.is(p.due(4500), 'moved');
  },
);

test(
  'a restarted portal is listed at once and three times more, 3 s apart: a paid client it forgot comes back ' +
    "without the stall's pace",
  () => {
    const p = new ListingPolicy({ minIntervalMs: 1000, restartGapMs: 3000, stalledIntervalMs: 15_000 });
    p.portalIdentity('8:100');
    p.listed(0, 10);
    p.portalIdentity('8:177');
    assert.is(p.due(1000), 'portal-restart');
    p.listed(1000, 10);
    const follow: number[] = [];
    for (let t = 1000; t <= 40_000; t += 500) {
      if (p.due(t) === 'portal-restart') {
        follow.push(t);
        p.listed(t, 10);
      }
    }
    assert.equal(follow, [4000, 7000, 10_000], 'three follow-ups, 3 s apart');
    assert.is(p.due(20_000), undefined, 'then the usual pace');
    assert.is(p.nextAt(), 70_000, 'the safety net next');
  },
);

test('a paying client whose counters stopped is listed for once per stall, not every tick', () => {
  const p = new ListingPolicy({ minIntervalMs: 1000, stalledIntervalMs: 1000 });
  p.listed(0, 10);
  p.afterTick(0, 0, [A]);
  assert.is(p.due(1000), 'stalled');
  p.listed(1000, 10);
  for (let t = 2000; t < 60_000; t += 1000) {
    p.afterTick(0, 0, [A]);
    assert.is(p.due(t), undefined, `A still idle at ${t}: looked at already`);
  }
  p.afterTick(0, 0, [A, B]);
  assert.is(p.due(60_000 - 500), 'stalled', 'B stopped: a new stall');
  p.listed(59_500, 10);
  p.afterTick(0, 0, [B]); // A moved
  assert.is(p.due(61_000), undefined);
  p.afterTick(0, 0, [A, B]); // A stopped again
  assert.is(p.due(61_000), 'stalled');
});

test(
  'stalls are listed for at their own pace: 15 s after the last listing at the soonest, or 20 times its ' +
    'duration; other reasons are not held back by them',
  () => {
    const p = new ListingPolicy();
    p.listed(0, 10);
    p.afterTick(0, 0, [A]);
    assert.is(p.due(1000), undefined, 'a stall waits');
    assert.is(p.nextAt(), 15_000);
    p.changed();
    assert.is(p.due(1000), 'changed', 'a purchase is not held back by a stall');
    p.listed(1000, 10);
    p.afterTick(0, 0, [A, B]);
    assert.is(p.due(15_999), undefined);
    assert.is(p.due(16_000), 'stalled');
    p.listed(16_000, 2000); // a listing that took 2 s: the next stall's listing 40 s later
    p.afterTick(0, 0, [B]);
    p.afterTick(0, 0, [A, B]); // A moved and stopped again
    assert.is(p.due(31_000), undefined);
    assert.is(p.due(56_000), 'stalled');
  },
);

test.run();
