// tier: fast
/**
 * Which change of a router alerts (fleet/dashboard/alert-rules.ts): what the Routers page shows red or amber, raised
 * once when it begins and cleared once when it ends; figures that move while it lasts alert nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alertChanges, alertLine, findings, type AlertState } from '../../src/fleet/dashboard/alert-rules.ts';
import type { RouterRow } from '../../src/fleet/dashboard/views.ts';

const NOW = Date.parse('2026-11-28T08:00:00Z');

const row = (router: string, o: Partial<RouterRow> = {}): RouterRow => ({
  router,
  online: true,
  status_reason: null,
  last_message_ms: NOW - 10_000,
  last_report_ms: NOW - 10_000,
  last_seq: '5',
  version: '0.1.0',
  uptime_s: '100',
  health: { journal_failing: null, damaged_tables: 0, config_problems: 0 },
  reported_dropped: '0',
  reported_expired: '0',
  sessions: '0',
  clients: '0',
  missing: '0',
  missing_usage: '0',
  missing_session: '0',
  ...o,
});

test('each red or amber condition of the Routers page is a finding; a healthy router has none', () => {
  assert.equal(findings(row('ok'), NOW, 90_000), []);
  assert.equal(
    findings(row('gone', { online: false, status_reason: 'lost' }), NOW, 90_000).map((f) => [f.kind, f.detail]),
    [['red', 'offline: connection lost (Last-Will)']],
  );
  assert.equal(
    findings(row('quiet', { last_message_ms: NOW - 91_000 }), NOW, 90_000).map((f) => f.kind),
    ['red'],
  );
  const sick = row('sick', {
    missing: '1',
    missing_session: '1',
    health: { journal_failing: 'EIO', damaged_tables: 2, config_problems: '1' },
  });
  assert.equal(
    findings(sick, NOW, 90_000).map((f) => f.kind),
    ['session-gap', 'damaged-tables', 'journal-failing', 'config-problems'],
  );
  assert.equal(
    findings(row('old', { health: null }), NOW, 90_000),
    [],
    'a router too old to send health: no health alert',
  );
  // A gap of usage reports only (droppable) and holes the router explains: amber on the page, not an alert.
  assert.equal(findings(row('usage', { missing_usage: '3' }), NOW, 90_000), []);
});

test('raised once when it begins, cleared once when it ends; its words moving alert nothing', () => {
  const first = findings(row('r1', { last_message_ms: NOW - 120_000 }), NOW, 90_000);
  const raised = alertChanges([], first);
  assert.equal(raised, [{ router: 'r1', kind: 'red', detail: 'silent for 2 min', raised: true }]);
  const recorded: AlertState[] = raised.map((c) => ({ ...c, active: c.raised }));
  // A minute later it is still silent (2 min, then 3): no new alert.
  const later = findings(row('r1', { last_message_ms: NOW - 120_000 }), NOW + 60_000, 90_000);
  assert.is(later[0]!.detail, 'silent for 3 min');
  assert.equal(alertChanges(recorded, later), []);
  // Heard again: cleared, with the words it was raised with.
  assert.equal(alertChanges(recorded, []), [{ router: 'r1', kind: 'red', raised: false, detail: 'silent for 2 min' }]);
  // Cleared before: nothing to clear again; raised again when it comes back.
  const cleared: AlertState[] = [{ router: 'r1', kind: 'red', active: false, detail: 'silent for 2 min' }];
  assert.equal(alertChanges(cleared, []), []);
  assert.equal(alertChanges(cleared, first).length, 1);
  // Two kinds of one router are two alerts; a router gone from the database clears its own.
  const two = alertChanges(
    [{ router: 'gone', kind: 'damaged-tables', active: true, detail: '1 damaged table(s)' }],
    findings(row('r2', { health: { damaged_tables: 1, journal_failing: 'EROFS' } }), NOW, 90_000),
  );
  assert.equal(
    two.map((c) => alertLine(c)),
    ['r2: damaged table(s) (raised)', 'r2: journal failing (raised)', 'gone: damaged table(s) (cleared)'],
  );
});

test.run();
