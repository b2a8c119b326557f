// tier: peers; needs initdb
/**
 * Failed logins are counted in the database, so several dashboard processes on one database share the count: five
 * wrong passwords for a name, spread over two processes, lock it in both for 15 minutes; a success clears the count.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, type Db } from '../../src/fleet/db/index.ts';
import { DASHBOARD_MIGRATIONS } from '../../src/fleet/dashboard/schema.ts';
import { InputError, Logins, setUser } from '../../src/fleet/dashboard/auth.ts';
import { freshDb, Postgres } from './rig.ts';

let pg: Postgres | undefined;
let db: Db | undefined;
test.after(async () => {
  await db?.close();
  await pg?.close();
});

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => 'logged in',
    (err: unknown) => (err instanceof InputError ? err.message : String(err)),
  );

test('five failures over two dashboard processes lock the name in both; the window ends it', async () => {
  pg = await Postgres.create();
  db = await freshDb(pg);
  await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS]);
  await setUser(db, 'alice', 'admin', 'correct horse battery');
  let now = Date.UTC(2026, 10, 26, 12);
  const a = new Logins(db, () => now);
  const b = new Logins(db, () => now);
  for (const [i, l] of [a, b, a, b, a].entries())
    assert.is(await refusal(l.login('alice', `wrong-${i}-password`)), 'wrong user name or password');
  const locked = 'too many failed logins for this user: try again in 15 minutes';
  assert.is(await refusal(b.login('alice', 'correct horse battery')), locked, 'the other process knows');
  assert.is(await refusal(a.login('alice', 'correct horse battery')), locked);
  now += 15 * 60_000 + 1;
  assert.is(await refusal(b.login('alice', 'correct horse battery')), 'logged in', 'the window is over');
  // A success cleared the count: four more failures do not lock.
  for (let i = 0; i < 4; i++) await refusal(a.login('alice', 'wrong-again-password'));
  assert.is(await refusal(b.login('alice', 'correct horse battery')), 'logged in');
  const rows = await db.query<{ user_name: string }>('SELECT user_name FROM dashboard_login_failures');
  assert.equal(rows, [], 'counts end with a success');
});

test.run();
