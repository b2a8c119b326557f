// tier: fast
/**
 * The operator's clock (fleet/dashboard/zone.ts): a time shown on the zone's wall clock, its day, its offset, an
 * hour the clock goes back through shown twice and apart; a name Intl does not know refused with the reason. The
 * grouping in PostgreSQL is checked on a real server in dashboard-zone.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { zoneDay, zoneHour, zoneOffset, zoneProblem, zoneTime } from '../../src/fleet/dashboard/zone.ts';

test('23:30 UTC is the next day in Berlin, the same day in UTC and New York', () => {
  const ms = Date.parse('2026-11-27T23:30:00Z');
  assert.is(zoneTime(ms, 'UTC'), '2026-11-27 23:30:00');
  assert.is(zoneTime(ms, 'Europe/Berlin'), '2026-11-28 00:30:00');
  assert.is(zoneDay(ms, 'Europe/Berlin'), '2026-11-28');
  assert.is(zoneDay(ms, 'America/New_York'), '2026-11-27');
  assert.is(zoneTime(null, 'UTC'), '');
  assert.is(zoneTime(Date.parse('2026-06-01T00:00:00Z'), 'UTC'), '2026-06-01 00:00:00', 'midnight is 00, not 24');
});

test('offsets, half hours included; the hour the clock goes back through shows twice, apart', () => {
  assert.is(zoneOffset(Date.parse('2026-07-01T12:00:00Z'), 'Europe/Berlin'), '+02:00');
  assert.is(zoneOffset(Date.parse('2026-12-01T12:00:00Z'), 'Europe/Berlin'), '+01:00');
  assert.is(zoneOffset(Date.parse('2026-12-01T12:00:00Z'), 'Asia/Kolkata'), '+05:30');
  assert.is(zoneOffset(Date.parse('2026-12-01T12:00:00Z'), 'UTC'), '+00:00');
  // 25 October 2026: Berlin's clock goes from 03:00 CEST back to 02:00 CET (01:00 UTC).
  const first = zoneHour(Date.parse('2026-10-25T00:00:00Z'), 'Europe/Berlin');
  const second = zoneHour(Date.parse('2026-10-25T01:00:00Z'), 'Europe/Berlin');
  assert.is(first, '2026-10-25 02:00 (+02:00)');
  assert.is(second, '2026-10-25 02:00 (+01:00)');
});

test('a name Intl does not know, or that is no zone name, is refused with the reason', () => {
  assert.is(zoneProblem('Europe/Berlin'), null);
  assert.is(zoneProblem('UTC'), null);
  assert.match(zoneProblem('Mars/Olympus_Mons') ?? '', /Intl/);
  assert.match(zoneProblem("Europe/Berlin'; DROP TABLE x") ?? '', /not a zone name/);
  assert.match(zoneProblem('') ?? '', /not a zone name/);
});

test.run();
