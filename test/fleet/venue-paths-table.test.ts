// tier: fast
/**
 * The Venues page's table (fleet/dashboard/venue-paths.ts): a session's overlaps over all its moves in its own unit
 * (a time session's seconds as a data session's bytes), what was charged for them, and amber where an overlap is not
 * all charged (pending, or more than was left where the lease went). A charge a router of an older release confirmed
 * without saying how much shows as taken, amount not reported, and is not amber.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { venuePathsTable, type VenueLeaseRow, type VenueMoveRow } from '../../src/fleet/dashboard/venue-paths.ts';

const lease = (id: string, metric: string): VenueLeaseRow => ({
  id,
  venue: 'hall',
  mac: '02:00:00:00:5e:05',
  state: 'held',
  holder: 'rb',
  epoch: 2,
  since_ms: Date.parse('2026-05-01T10:01:00Z'),
  metric,
  remaining: '100',
});
const move = (
  leaseId: string,
  epoch: number,
  overlap: string,
  charged: string | null,
  settled = charged !== null,
): VenueMoveRow => ({
  lease_id: leaseId,
  epoch,
  from_router: 'ra',
  to_router: 'rb',
  at_ms: Date.parse('2026-05-01T10:01:00Z'),
  how: 'expired',
  overlap,
  charged,
  settled,
});

test("overlaps in the session's unit, what was charged, amber while not all of it is", () => {
  const table = venuePathsTable(
    [lease('ra/time', 'seconds'), lease('ra/data', 'bytes'), lease('ra/pending', 'bytes'), lease('ra/none', 'bytes')],
    [
      move('ra/time', 1, '7', '7'),
      move('ra/data', 1, '524288', '1000'),
      move('ra/pending', 1, '300', null),
      move('ra/none', 1, '0', null),
    ],
    'UTC',
  );
  const col = (key: string): number => table.columns.findIndex((c) => c.key === key);
  const cells = table.rows.map((r) => [r[col('overlap')], r[col('charged')]]);
  assert.equal(cells, [
    ['7 seconds', '7'],
    ['524288 bytes', '1000'],
    ['300 bytes', '0 (1 pending)'],
    ['0 bytes', '0'],
  ]);
  assert.equal(table.rowClass, [undefined, 'warn', 'warn', undefined]);
});

test('a charge confirmed without a figure: taken, amount not reported, not amber', () => {
  const table = venuePathsTable(
    [lease('ra/unsaid', 'bytes'), lease('ra/mixed', 'bytes')],
    [
      move('ra/unsaid', 2, '300', null, true),
      move('ra/mixed', 2, '300', null, true),
      move('ra/mixed', 3, '200', null),
      move('ra/mixed', 4, '100', '100'),
    ],
    'UTC',
  );
  const col = table.columns.findIndex((c) => c.key === 'charged');
  assert.equal(
    table.rows.map((r) => r[col]),
    ['0 (1 taken, amount not reported)', '100 (1 pending; 1 taken, amount not reported)'],
  );
  assert.equal(table.rowClass, [undefined, 'warn']);
});

test.run();
