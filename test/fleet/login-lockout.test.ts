// tier: peers; needs initdb
/**
 * Failed logins are counted in the database, so several dashboard processes on one database share the count: five
 * wrong passwords for a name, spread over two processes, lock it in both for 15 minutes; a success clears the count.
 * The count is taken before the password is checked: 100 parallel guesses get 5 checks, and the right password in a
 * batch after them does not log in. Logins in flight are bounded per address, password checks per process, and a
 * name no user has costs no check: 200 strangers' names take none of the checks the admin's own login needs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLEET_MIGRATIONS, migrate, type Db } from '../../src/fleet/db/index.ts';
import { DASHBOARD_MIGRATIONS } from '../../src/fleet/dashboard/schema.ts';
import { InputError, LoginBusy, Logins, setUser } from '../../src/fleet/dashboard/auth.ts';
import { verifyPassword } from '../../src/fleet/dashboard/passwords.ts';
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

/** verifyPassword, counted, and held until `open` while `hold` is set. */
function countingVerify() {
  const c = {
    calls: 0,
    running: 0,
    most: 0,
    hold: null as Promise<void> | null,
    verify: async (password: string, stored: string): Promise<boolean> => {
      c.calls++;
      c.running++;
      c.most = Math.max(c.most, c.running);
      try {
        if (c.hold !== null) await c.hold;
        return await verifyPassword(password, stored);
      } finally {
        c.running--;
      }
    },
  };
  return c;
}

test('100 parallel guesses: 5 checked, 95 unchecked; the right password in the next 40 does not log in', async () => {
  await setUser(db!, 'bob', 'operator', 'bobs right password');
  const now = Date.UTC(2026, 10, 27, 12);
  const v = countingVerify();
  const l = new Logins(db!, () => now, { verify: v.verify });
  const guesses = await Promise.all(
    Array.from({ length: 100 }, (_, i) => refusal(l.login('bob', `guess-number-${i}`, `10.1.0.${i}`))),
  );
  const wrong = guesses.filter((g) => g === 'wrong user name or password').length;
  assert.is(wrong, 5, 'only the first five of the window are checked');
  assert.is(guesses.filter((g) => /too many failed logins/.test(g)).length, 95);
  assert.is(v.calls, 5);
  const batch = Array.from({ length: 40 }, (_, i) => (i === 20 ? 'bobs right password' : `more-guessing-${i}`));
  const answers = await Promise.all(batch.map((p, i) => refusal(l.login('bob', p, `10.2.0.${i}`))));
  assert.not.ok(answers.includes('logged in'), 'the lock holds for the right password too');
  assert.is(v.calls, 5, 'nothing more was checked');
});

test("200 strangers' names cost no check: the admin's login is the only one checked", async () => {
  await setUser(db!, 'root-admin', 'admin', 'the admins own password');
  const now = Date.UTC(2026, 10, 27, 13);
  const v = countingVerify();
  const l = new Logins(db!, () => now, { verify: v.verify });
  const strangers = Array.from({ length: 200 }, (_, i) =>
    refusal(l.login(`stranger-${i}`, 'some password guess', `10.3.${i >> 8}.${i & 255}`)),
  );
  assert.is(await refusal(l.login('root-admin', 'the admins own password', '10.9.9.9')), 'logged in');
  const answers = await Promise.all(strangers);
  assert.ok(
    answers.every((a) => a === 'wrong user name or password'),
    'an unknown name reads as a wrong password',
  );
  assert.is(v.calls, 1, "only the admin's password was checked");
});

test('logins in flight are bounded per address, and checks per process', async () => {
  const now = Date.UTC(2026, 10, 27, 14);
  const v = countingVerify();
  let open!: () => void;
  v.hold = new Promise((resolve) => (open = resolve));
  const l = new Logins(db!, () => now, { verify: v.verify, limits: { perAddress: 4, checks: 2, waiting: 64 } });
  for (let i = 0; i < 8; i++) await setUser(db!, `user-${i}`, 'operator', 'a password of user');
  const fromOne = Array.from({ length: 6 }, (_, i) => refusal(l.login(`user-${i}`, 'a password of user', '10.4.0.1')));
  const busy = 'too many logins in flight from your address: wait for them to finish';
  const others = [6, 7].map((i) => refusal(l.login(`user-${i}`, 'a password of user', `10.4.0.${i}`)));
  // The 5th and 6th of one address are refused at once, while four wait on the held checks.
  assert.equal((await Promise.all(fromOne.slice(4))).map(String), [busy, busy]);
  while (v.running < 2) await new Promise((r) => setTimeout(r, 20));
  open();
  assert.equal(await Promise.all([...fromOne.slice(0, 4), ...others]), Array(6).fill('logged in'));
  assert.is(v.most, 2, 'six logins waiting, two checks at once');
  assert.ok(new LoginBusy('x') instanceof InputError);
});

test.run();
