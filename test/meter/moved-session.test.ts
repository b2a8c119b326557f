// tier: fast
// A session moved to another MAC (a customer's restore on a new private address, ubus `move`) is metered on the new
// MAC from the move on: the meter's MAC index follows `moved`, so the new MAC's bytes are billed to the same allotment
// and the old MAC's are not. Without that the new MAC's traffic went unbilled and the data session never ended.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { socketMeter } from './socket-meter.ts';

const OLD = '02:00:00:00:00:2a';
const NEW = '02:00:00:00:00:2b';
const K = 1024; // openNDS counts KiB

test('a moved data session is billed on its new MAC and ends at its allotment there', async () => {
  const { now, portal, sessions, port, meter, close } = await socketMeter('moved');
  try {
    portal.addClient(OLD, '10.3.0.1');
    portal.addClient(NEW, '10.3.0.2');
    now.t += 1000;
    const { session } = await sessions.activate({
      mac: OLD,
      metric: 'bytes',
      allotment: 100n * 1024n,
      payment: { method: 'grant', reference: 'moved-1', amount: 1n, asset: 'X', at: 1 },
    });
    portal.auth(OLD);
    now.t += 10;
    await meter.tick(); // the old MAC's base reading
    portal.addTraffic(OLD, 40 * K, 0);
    now.t += 1000;
    await meter.tick();
    assert.is(sessions.get(session.id)!.used, 40 * K);

    await sessions.move(session.id, NEW);
    assert.is(port.active(NEW)?.id, session.id, 'the meter maps the new MAC to the session');
    assert.is(port.active(OLD), undefined, 'and no longer the old one');
    portal.auth(NEW);
    now.t += 10;
    await meter.tick(); // the new MAC's base reading
    portal.addTraffic(NEW, 30 * K, 0);
    portal.addTraffic(OLD, 7 * K, 0); // the old address, no longer this session's
    now.t += 1000;
    await meter.tick();
    assert.is(sessions.get(session.id)!.used, 70 * K, 'the new MAC is billed from the move; the old one is not');
    portal.addTraffic(NEW, 35 * K, 0);
    now.t += 1000;
    await meter.tick();
    const ended = sessions.get(session.id)!;
    assert.is(ended.state, 'EXPIRED');
    assert.is(ended.endCause, 'data-limit');
    assert.is(ended.mac, NEW);
  } finally {
    await close();
  }
});

test.run();
