/**
 * The alerts tests' fleet: a real PostgreSQL 15 with the fleet's and the dashboard's tables, the admin `alice`
 * (password ALICE_PASSWORD) and a dashboard on a free port; and the evaluator the tests drive round by round on
 * their own clock, its log lines kept for the assertions.
 */
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db } from '../../src/fleet/db/index.ts';
import {
  DASHBOARD_MIGRATIONS,
  setUser,
  startAlerts,
  startDashboard,
  type Alerts,
  type AlertsOptions,
  type Dashboard,
} from '../../src/fleet/dashboard/index.ts';
import { Postgres } from '../peers/postgres.ts';

export const ALICE_PASSWORD = 'correct horse battery';

export interface AlertsFleet {
  db: Db;
  dash: Dashboard;
  close(): Promise<void>;
}

export async function openAlertsFleet(): Promise<AlertsFleet> {
  const pg = await Postgres.create();
  const db = await openPostgres({ url: pg.url() });
  await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS]);
  await setUser(db, 'alice', 'admin', ALICE_PASSWORD);
  const dash = await startDashboard({ db, port: 0 });
  return {
    db,
    dash,
    close: async () => {
      await dash.close();
      await db.close();
      await pg.close();
    },
  };
}

/** An evaluator on the test's clock, every round run by the test (the interval never fires within a test). */
export function alertsOnClock(
  db: Db,
  now: () => number,
  lines: string[],
  o: Pick<AlertsOptions, 'staleAfterMs' | 'zone' | 'sendmailPath'>,
): Alerts {
  return startAlerts({
    db,
    ...o,
    intervalMs: 3_600_000,
    now,
    log: (m, f) => void lines.push(`${m} ${JSON.stringify(f ?? {})}`),
  });
}
