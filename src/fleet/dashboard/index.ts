/**
 * The fleet's dashboard (docs/fleet.md, "Dashboard"): revenue, routers' health, live sessions, gaps and the audit of
 * operator actions, from the fleet_* views, behind a login; actions are the routers' signed MQTT commands.
 */
import type { Db } from '../db/index.ts';
import { FLEET_MIGRATIONS, migrate } from '../db/index.ts';
import { Actions, type CommandBus } from './actions.ts';
import { Logins } from './auth.ts';
import { DASHBOARD_MIGRATIONS } from './schema.ts';
import { OffsetFill } from './offset-fill.ts';
import { DashboardServer } from './server.ts';
import { checkTimeZone, DEFAULT_TIME_ZONE } from './zone.ts';

export { DASHBOARD_MIGRATIONS } from './schema.ts';
export { setUser, InputError } from './auth.ts';
export { parseCommandKeys } from './actions.ts';
export { connectMqttBus } from './mqtt-bus.ts';
export { startAlerts, type Alerts, type AlertsOptions } from './alert-send.ts';
export { checkTimeZone, DEFAULT_TIME_ZONE, TimeZoneError, zoneProblem } from './zone.ts';

export interface DashboardOptions {
  db: Db;
  /** Where to listen (default 127.0.0.1, port 8080; 0: any free port). */
  host?: string;
  port?: number;
  /** Actions: the broker connection and the routers' command keys; null: the dashboard only shows. */
  bus?: CommandBus | null;
  commandKeys?: ReadonlyMap<string, string>;
  prefix?: string;
  /** A router silent for longer is red (default 90 s: the routers' 60 s status_interval and 30 s to spare). */
  staleAfterMs?: number;
  secureCookies?: boolean;
  /** The fleet's time zone (an IANA name; default UTC): days, hours and times of a user without their own. */
  timeZone?: string;
  /** The clock the pages judge silence by (tests inject one); commands and the audit use the real one. */
  now?: () => number;
  replyWaitMs?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface Dashboard {
  url: string;
  close(): Promise<void>;
}

export const DEFAULT_STALE_AFTER_MS = 90_000;

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  // Both lists: migrate() refuses a database holding versions it is not given (an older sluice's guard).
  await migrate(o.db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS]);
  const zone = await checkTimeZone(o.db, o.timeZone ?? DEFAULT_TIME_ZONE);
  const now = o.now ?? Date.now;
  const keys = o.commandKeys ?? new Map<string, string>();
  const actions =
    o.bus == null
      ? null
      : new Actions({
          db: o.db,
          bus: o.bus,
          keyOf: (router) => keys.get(router) ?? keys.get('*'),
          prefix: o.prefix ?? 'sluice',
          // The real clock, whatever shows the pages: a router refuses a command signed outside its window.
          now: Date.now,
          ...(o.replyWaitMs !== undefined && { replyWaitMs: o.replyWaitMs }),
        });
  // The days of the fleet's zone and of every user's own, kept and filled in the background from the start.
  const fill = new OffsetFill({ db: o.db, ...(o.log !== undefined && { log: o.log }) });
  const zones = await o.db.query<{ zone: string }>(
    'SELECT DISTINCT time_zone AS zone FROM dashboard_users WHERE time_zone IS NOT NULL',
  );
  for (const z of [zone, ...zones.map((r) => r.zone)]) fill.keep(z);
  const server = new DashboardServer({
    db: o.db,
    logins: new Logins(o.db, now, { zone }),
    actions,
    now,
    staleAfterMs: o.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
    secureCookies: o.secureCookies ?? false,
    log: o.log ?? (() => undefined),
    keepZone: (z) => fill.keep(z),
  });
  const url = await server.listen(o.port ?? 8080, o.host ?? '127.0.0.1').catch(async (err: unknown) => {
    await fill.close();
    throw err;
  });
  return {
    url,
    close: async () => {
      await fill.close();
      await server.close();
    },
  };
}
