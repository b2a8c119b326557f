// tier: fast
// Several devices per purchase, metered: a Meter over the real SessionManager bills every device's bytes to the one
// session (the sum), a device joining mid-session is billed from its join, and the sum reaching the allotment ends the
// session for every device at once (data-limit). Billing is checked, not timing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { socketMeter } from './socket-meter.ts';

const A = '02:00:00:00:00:1a';
const B = '02:00:00:00:00:1b';
/** openNDS counts KiB: traffic in whole KiB is billed to the byte. */
const K = 1024;

test('two devices of one purchase: the meter bills their sum to the one allotment and ends it for both', async () => {
  const { now, portal, sessions, port, meter, close } = await socketMeter('shared-devices');
  try {
    portal.addClient(A, '10.2.0.1');
    portal.addClient(B, '10.2.0.2');
    now.t += 1000;
    const { session } = await sessions.activate({
      mac: A,
      metric: 'bytes',
      allotment: 100n * 1024n,
      devices: 2,
      payment: { method: 'grant', reference: 'shared-1', amount: 1n, asset: 'X', at: 1 },
    });
    portal.auth(A);
    now.t += 10;
    await meter.tick(); // A's base reading
    portal.addTraffic(A, 30 * K, 0);
    portal.addTraffic(B, 5 * K, 0); // before B joined: not this session's
    now.t += 1000;
    await meter.tick();
    assert.is(sessions.get(session.id)!.used, 30 * K);
    await sessions.joinDevice(sessions.joinCode(session.id)!, B);
    assert.is(port.active(B)?.id, session.id, 'the meter maps the joined MAC to the shared session');
    portal.auth(B);
    now.t += 10;
    await meter.tick(); // B's base reading
    portal.addTraffic(A, 20 * K, 0);
    portal.addTraffic(B, 25 * K, 1 * K);
    now.t += 1000;
    await meter.tick();
    const mid = sessions.get(session.id)!;
    assert.is(mid.used, (30 + 20 + 26) * K, 'the sum of both devices');
    assert.is(mid.state, 'ACTIVE');
    portal.addTraffic(B, 30 * K, 0);
    now.t += 1000;
    const report = await meter.tick();
    const ended = sessions.get(session.id)!;
    assert.is(ended.state, 'EXPIRED');
    assert.is(ended.endCause, 'data-limit');
    assert.is(ended.used, 106 * K, 'the overshoot is billed, not forgiven');
    assert.ok(
      report.usage.some((u) => u.mac === B && u.exhausted),
      'B is reported exhausted',
    );
    assert.is(port.active(A), undefined);
    assert.is(port.active(B), undefined, 'neither device is billed after the end');
  } finally {
    await close();
  }
});

test.run();
