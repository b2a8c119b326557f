// tier: fast
/**
 * What RADIUS accounting's records say of a session (upstream/radius/session-records.ts), on their own: sluice's
 * metered total split by the per-direction counters, a Start with no time nor octets, a lost session's NAS-Reboot
 * Stop from what was saved, and what is saved of a tracked session.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Session } from '../../../src/sessions/index.ts';
import {
  accountingUserName,
  lostSessionStop,
  recordOf,
  savedOf,
  trackSession,
} from '../../../src/upstream/radius/session-records.ts';

const session = {
  id: 'a1b2c3d4e5f60718',
  mac: '02:00:00:00:0f:01',
  ip: '10.0.0.9',
  user: null,
  startedAt: 1_000_000,
  createdAt: 999_000,
  bytes: 2_500,
} as unknown as Session;

test('a tracked session: its User-Name the RFC 3580 MAC, its first Interim one interval on', () => {
  assert.is(accountingUserName(session), '02-00-00-00-0F-01');
  const t = trackSession(session, { interimMs: null, classes: [], defaultInterimMs: 300_000 });
  assert.is(t.nextInterimAt, 1_300_000);
  // A session tracked again after a restart: its total the journal's, which upstream was told at most.
  assert.is(t.writtenBytes, 2_500n);
  assert.is(
    trackSession(session, { interimMs: 60_000, classes: [], defaultInterimMs: 300_000 }).nextInterimAt,
    1_060_000,
  );
});

test("the total is sluice's: the upload capped at it, the download the rest; a Start carries none", () => {
  const t = {
    ...trackSession(session, { interimMs: null, classes: ['Y2xhc3M='], defaultInterimMs: 300_000 }),
    up: 700n,
    down: 9_000n,
  };
  const interim = recordOf(t, 'Interim-Update', 1_061_500, { total: 5_000n, multiSessionId: 'venue-7' });
  assert.equal(
    [interim.sessionTime, interim.inputOctets, interim.outputOctets, interim.classes, interim.multiSessionId],
    [61, 700n, 4_300n, ['Y2xhc3M='], 'venue-7'],
  );
  const capped = recordOf({ ...t, up: 8_000n }, 'Stop', 1_061_500, { total: 5_000n, multiSessionId: null });
  assert.equal([capped.inputOctets, capped.outputOctets, 'multiSessionId' in capped], [5_000n, 0n, false]);
  const start = recordOf(t, 'Start', 1_000_000, { total: null, multiSessionId: null });
  assert.equal([start.sessionTime, start.inputOctets, start.outputOctets], [0, 0n, 0n]);
});

test("a lost session's Stop: NAS-Reboot with the octets saved; what is saved has no due time nor total", () => {
  const t = {
    ...trackSession(session, { interimMs: null, classes: [], defaultInterimMs: 300_000 }),
    up: 12n,
    down: 34n,
  };
  const saved = savedOf(t);
  assert.not.ok('nextInterimAt' in saved);
  assert.not.ok('writtenBytes' in saved, "the total is the journal's, not saved beside it");
  const stop = lostSessionStop(saved, 1_010_900);
  assert.equal(
    [stop.kind, stop.cause, stop.sessionTime, stop.inputOctets, stop.outputOctets, stop.user],
    ['Stop', 'NAS-Reboot', 10, 12n, 34n, '02-00-00-00-0F-01'],
  );
});

test.run();
