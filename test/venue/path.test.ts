// tier: peers; needs initdb
/**
 * The fleet dashboard's view of customers' paths (docs/roaming.md, "What is visible"), on a real PostgreSQL 15: a
 * venue session sold at ra, released to rb, then taken by ra again after rb's lease expired, built with the lease
 * service's own transactions (src/fleet/venue/leases.ts), shows as one row `ra → rb (…, released) → ra (…, expired)`,
 * held at ra; a device filter shows only its sessions; a database the lease service never ran on says so.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { migrate, type Db } from '../../src/fleet/db/index.ts';
import { DASHBOARD_MIGRATIONS } from '../../src/fleet/dashboard/index.ts';
import { venuesScreen } from '../../src/fleet/dashboard/venue-paths.ts';
import type { ScreenContext } from '../../src/fleet/dashboard/screens.ts';
import type { Table } from '../../src/fleet/dashboard/table.ts';
import { claim, opened, released, type Figures } from '../../src/fleet/venue/leases.ts';
import { registerSale } from '../../src/fleet/venue/holder-reports.ts';
import { VENUE_MIGRATIONS } from '../../src/fleet/venue/index.ts';
import { freshDb } from '../fleet/rig.ts';
import { Postgres } from '../peers/postgres.ts';

const D = '02:00:00:00:5e:05';
const OTHER = '02:00:00:00:5e:06';
let pg: Postgres;
let dbs: Db[] = [];

test.before(async () => {
  pg = await Postgres.create();
});
test.after(async () => {
  for (const db of dbs) await db.close();
  await pg.close();
});

const figures = (used: number, at: number): Figures => ({
  metric: 'bytes',
  allotment: '8000',
  used: String(used),
  remaining: String(8000 - used),
  bytes: String(used),
  expiresAt: null,
  rateDown: null,
  rateUp: null,
  devices: 1,
  user: null,
  plan: null,
  at,
});

const screen = (db: Db, query = ''): Promise<{ sections: Array<string | Table> }> =>
  venuesScreen({
    db,
    query: new URLSearchParams(query),
    now: Date.now(),
    staleAfterMs: 90_000,
    zone: 'UTC',
    canAct: () => false,
    login: { user: 'oscar', role: 'operator', csrf: 'x', zone: 'UTC', ownZone: null },
  } as unknown as ScreenContext);

test("a session's path: sold at ra, released to rb, taken back by ra once rb's lease expired", async () => {
  const db = await freshDb(pg);
  dbs.push(db);
  await migrate(db, [...DASHBOARD_MIGRATIONS, ...VENUE_MIGRATIONS]);
  const t0 = Date.parse('2026-05-01T10:00:00Z');
  await registerSale(db, 'hall', 'ra', '00112233445566aa', D, figures(0, t0), t0);
  await registerSale(db, 'hall', 'ra', '00112233445566bb', OTHER, figures(0, t0 - 1000), t0 - 1000);
  const o = { ttlMs: 90_000, resendMs: 3000 };
  const first = await claim(db, 'hall', 'rb', D, { ...o, now: t0 + 60_000 });
  assert.is(first.kind, 'release');
  const moved = await released(db, 'ra', 'ra/00112233445566aa', 1, figures(3000, t0 + 61_000), t0 + 61_000);
  assert.is(moved.kind, 'moved');
  await opened(db, 'ra/00112233445566aa', 2, 'rb', '00112233445566cc');
  // rb unheard for longer than the lease's TTL: ra's claim takes it with rb's last figures.
  const back = await claim(db, 'hall', 'ra', D, { ...o, now: t0 + 300_000 });
  assert.is(back.kind, 'open');
  await opened(db, 'ra/00112233445566aa', 3, 'ra', '00112233445566dd');

  const page = await screen(db);
  const table = page.sections.find((s): s is Table => typeof s !== 'string')!;
  const rows = table.rows.map((r) => Object.fromEntries(table.columns.map((c, i) => [c.key, r[i]])));
  const mine = rows.find((r) => r['mac'] === D)!;
  assert.is(mine['path'], 'ra → rb (2026-05-01 10:01:01, released) → ra (2026-05-01 10:05:00, expired)');
  assert.equal([mine['holder'], mine['state'], mine['venue']], ['ra', 'held', 'hall']);
  assert.is(rows.find((r) => r['mac'] === OTHER)!['path'], 'ra', 'a session that never moved: where it was sold');

  const filtered = await screen(db, `mac=${D.toUpperCase()}`);
  const only = filtered.sections.find((s): s is Table => typeof s !== 'string')!;
  assert.is(only.rows.length, 1);
  await venuesScreen({ db, query: new URLSearchParams('mac=x') } as unknown as ScreenContext).then(
    () => assert.unreachable('a bad MAC is refused'),
    (err: Error) => assert.match(err.message, /MAC/),
  );
});

test('a database the lease service never ran on: the page says so', async () => {
  const db = await freshDb(pg);
  dbs.push(db);
  await migrate(db, DASHBOARD_MIGRATIONS);
  const page = await screen(db);
  assert.ok(String(page.sections[0]).includes('No venue lease service'));
});

test.run();
