// tier: peers; needs initdb
/**
 * The fleet's record of an overlap charge's answers on a real PostgreSQL 15 (docs/roaming.md, "The overlap charge"):
 * a charge resent before its answer came is answered twice by the router that took it, once with how much and once
 * "taken before" (no figure), in either order. The move is settled by the first and keeps the figure either way: the
 * Venues page shows what was charged, not a charge pending forever. A holder that gives the session up lists the
 * charges it took in its handover reply, with what each took: the move keeps that figure; a router of an older release
 * lists them without figures, and the move is settled with `charged` empty (the page: "amount not reported").
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freshDb } from './rig.ts';
import { migrate, type Db } from '../../src/fleet/db/index.ts';
import { handedOver, listedCharges, settled } from '../../src/fleet/venue/charges.ts';
import { VENUE_MIGRATIONS } from '../../src/fleet/venue/index.ts';
import { Postgres } from '../peers/postgres.ts';

let pg: Postgres;
let db: Db;
test.before(async () => {
  pg = await Postgres.create();
  db = await freshDb(pg);
  await migrate(db, VENUE_MIGRATIONS);
});
test.after(async () => {
  await db?.close();
  await pg?.close();
});

/** A lease moved from ra to rb (epoch 2), ra revoked later with an overlap of 9 s booked and sent to rb. */
async function bookedMove(lease: string): Promise<void> {
  await db.query(
    `INSERT INTO venue_leases (id, venue, mac, state, holder, holder_session, epoch, since, metric, allotment, used,
       remaining, sold, reported_at, renewed_at)
     VALUES ($1, 'hall', '02:00:00:00:5e:01', 'held', 'rb', 's2', 2, now(), 'seconds', 3600, 0, 3000, 3600, now(),
       now())`,
    [lease],
  );
  await db.query(
    `INSERT INTO venue_moves (lease_id, epoch, venue, mac, from_router, to_router, at, how, metric, remaining, used,
       revoked_at, overlap, charge_epoch)
     VALUES ($1, 2, 'hall', '02:00:00:00:5e:01', 'ra', 'rb', now(), 'expired', 'seconds', 3000, 600, now(), 9, 2)`,
    [lease],
  );
}

async function move(lease: string): Promise<{ charged: string | null; at: Date | null }> {
  const [row] = await db.query<{ charged: string | null; at: Date | null }>(
    'SELECT charged::text, charged_at AS at FROM venue_moves WHERE lease_id = $1 AND epoch = 2',
    [lease],
  );
  return row!;
}

test('answered twice, "taken before" first: the figure that follows is kept, settled once', async () => {
  await bookedMove('ra/1');
  await settled(db, { router: 'rb', leaseId: 'ra/1', move: 2, epoch: 2, charged: null });
  const first = await move('ra/1');
  assert.ok(first.at !== null, 'settled by the first answer');
  await settled(db, { router: 'rb', leaseId: 'ra/1', move: 2, epoch: 2, charged: '9' });
  const after = await move('ra/1');
  assert.is(after.charged, '9', 'what was taken');
  assert.equal(after.at, first.at, 'settled when the first answer came');
});

test('answered twice, the figure first: "taken before" changes nothing', async () => {
  await bookedMove('ra/2');
  await settled(db, { router: 'rb', leaseId: 'ra/2', move: 2, epoch: 2, charged: '9' });
  const first = await move('ra/2');
  await settled(db, { router: 'rb', leaseId: 'ra/2', move: 2, epoch: 2, charged: null });
  assert.equal(await move('ra/2'), first);
  assert.is(first.charged, '9');
});

test('a handover reply with amounts: the charge is settled with what was taken', async () => {
  await bookedMove('ra/3');
  const reply = { charges: [2], charge_amounts: { '2': '9' } };
  await handedOver(db, 'ra/3', 2, listedCharges(reply));
  const after = await move('ra/3');
  assert.ok(after.at !== null, 'settled');
  assert.is(after.charged, '9', 'what the holder took');
});

test('an older router lists charges without amounts: settled, figure unknown, filled in later', async () => {
  await bookedMove('ra/4');
  await handedOver(db, 'ra/4', 2, listedCharges({ charges: [2] }));
  const first = await move('ra/4');
  assert.ok(first.at !== null, 'settled, not sent on to the next holder');
  assert.is(first.charged, null);
  const [row] = await db.query<{ epoch: number | null }>(
    'SELECT charge_epoch AS epoch FROM venue_moves WHERE lease_id = $1 AND epoch = 2',
    ['ra/4'],
  );
  assert.is(row!.epoch, 2, 'still addressed to the holder that took it');
  await settled(db, { router: 'rb', leaseId: 'ra/4', move: 2, epoch: 2, charged: '9' });
  assert.equal(await move('ra/4'), { charged: '9', at: first.at });
});

test('amounts that are not whole numbers are not recorded', () => {
  assert.equal(listedCharges({ charges: [2, 3, 'x'], charge_amounts: { '2': '-1', '3': '12' } }), [
    { move: 2, amount: null },
    { move: 3, amount: '12' },
  ]);
  assert.equal(listedCharges({ charges: [2], charge_amounts: [5] }), [{ move: 2, amount: null }]);
  assert.equal(listedCharges(null), []);
});

test.run();
