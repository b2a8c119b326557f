// `npm run bench -- dashboard-login [--strangers 200] [--logins 20]`: the fleet dashboard's door under a crowd
// (docs/fleet.md, "Users and the dashboard in a deployment"): the admin's own login timed while `--strangers`
// strangers, each from an address of its own, guess logins back to back (names no user has, and guesses at an
// operator's name, which its lock closes after 5), on a real PostgreSQL 15 with the dashboard's real password check
// (scrypt) and its default limits (src/fleet/dashboard/auth.ts). Prints the admin's login time p50/p99/max over
// `--logins` logins, without and then with the crowd, and the strangers' attempts per second; the load beside it.
import { loadavg } from 'node:os';
import { FLEET_MIGRATIONS, migrate, openPostgres } from '../src/fleet/db/index.ts';
import { DASHBOARD_MIGRATIONS } from '../src/fleet/dashboard/schema.ts';
import { Logins, setUser } from '../src/fleet/dashboard/auth.ts';
import { Postgres } from '../test/peers/postgres.ts';

function arg(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

const load = () => loadavg()[0]!.toFixed(1);
const ADMIN_PASSWORD = 'the admins own long password';

export default async function dashboardLogin(argv: string[]): Promise<void> {
  const strangers = Number(arg(argv, 'strangers', '200'));
  const logins = Number(arg(argv, 'logins', '20'));
  const pg = await Postgres.create();
  const admin = await openPostgres({ url: pg.url(), max: 1 });
  await admin.exec('CREATE DATABASE bench_login');
  await admin.close();
  const db = await openPostgres({ url: pg.url('bench_login') });
  try {
    await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS]);
    await setUser(db, 'admin', 'admin', ADMIN_PASSWORD);
    await setUser(db, 'operator', 'operator', 'an operators long password');
    const door = new Logins(db, Date.now);

    const adminLogins = async (): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < logins; i++) {
        const t = performance.now();
        await door.login('admin', ADMIN_PASSWORD, '10.255.0.1');
        times.push(performance.now() - t);
      }
      return times.sort((a, b) => a - b);
    };
    const show = (label: string, t: number[], extra = '') => {
      const at = (q: number) => t[Math.min(t.length - 1, Math.floor(q * t.length))]!.toFixed(0);
      console.log(
        `dashboard-login ${label}: the admin's login p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, ` +
          `max ${t[t.length - 1]!.toFixed(0)} ms (${t.length} logins)${extra}; load ${load()}`,
      );
    };

    await door.login('admin', ADMIN_PASSWORD, '10.255.0.1'); // the first check times scrypt here
    show('alone', await adminLogins());

    let running = true;
    let attempts = 0;
    const crowd = Array.from({ length: strangers }, async (_, i) => {
      const from = `10.${i >> 8}.${i & 255}.7`;
      for (let k = 0; running; k++) {
        // Every tenth guess at the operator's name (its lock closes after 5); the rest at names no user has.
        const name = k % 10 === 9 ? 'operator' : `stranger-${i}-${k}`;
        await door.login(name, `guess ${k}`, from).catch(() => undefined);
        attempts++;
      }
    });
    const t0 = performance.now();
    const times = await adminLogins();
    const s = (performance.now() - t0) / 1000;
    show(`with ${strangers} strangers guessing`, times, `, the strangers ${(attempts / s).toFixed(0)} attempts/s`);
    running = false;
    await Promise.all(crowd);
  } finally {
    await db.close();
    await pg.close();
  }
}
