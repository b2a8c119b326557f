// tier: fast
// A paying client whose kernel counters stopped (meter/kernel-mode.ts afterBilling): a reason to list the portal once
// (it may have closed the gate by itself), unless the portal's own deauths were reported when the counters stopped
// (portal/binauth-watch.ts): then its gate closing would have been told.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelMode, STALL_MS } from '../../src/meter/kernel-mode.ts';
import type { KernelCountersPort, MeteredSession, SessionsPort } from '../../src/meter/ports.ts';

const A = '02:00:00:00:0f:0a';
const counters: KernelCountersPort = {
  enabled: true,
  dumpArgv: [],
  changes: 0,
  has: (mac) => mac === A,
  count: async () => {},
  rebuild: async () => {},
};
const session = { id: 's-a', mac: A, metric: 'bytes' } as MeteredSession;
const sessions = { activeSessions: () => [session], active: () => session } as unknown as SessionsPort;

/** The reason the tick after A's counters stopped (moved at 1 s, still at 1 s + STALL_MS) lists for, if any. */
function afterStop(reportedSince: number | undefined): string | undefined {
  const km = new KernelMode(counters, { deauthsReportedSince: () => reportedSince });
  km.policy.listed(0, 100);
  km.afterBilling(1000, new Set([A]), sessions);
  const now = 1000 + STALL_MS;
  km.afterBilling(now, new Set(), sessions);
  return km.policy.due(now);
}

test('counters stopped with no deauth reported: listed for (the portal may have closed the gate)', () => {
  assert.is(afterStop(undefined), 'stalled');
});

test('counters stopped while the portal reports its deauths: no listing', () => {
  assert.is(afterStop(500), undefined);
});

test('counters stopped before the report began (the watch came up later): listed for', () => {
  assert.is(afterStop(5000), 'stalled');
});

test.run();
