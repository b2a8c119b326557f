/**
 * A venue of real routers for the roaming tests: sluice daemons (dist/sluice.mjs, one ubus broker and portal each)
 * on a real mosquitto, and the fleet's venue lease service on a real PostgreSQL 15 (docs/roaming.md).
 */
import { DaemonLab } from '../daemon/harness.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { Postgres } from '../peers/postgres.ts';
import { freshDb, recordingLog } from '../fleet/rig.ts';
import { migrate, type Db } from '../../src/fleet/db/index.ts';
import { startVenueService, VENUE_MIGRATIONS, type VenueService } from '../../src/fleet/venue/index.ts';

export const SECRET = 'venue-test-command-secret';
export const VENUE = 'hall';

export interface Venue {
  pg: Postgres;
  broker: Mosquitto;
  db: Db;
  service: VenueService;
  routers: Map<string, DaemonLab>;
  lines: string[];
  close(): Promise<void>;
}

export function routerConfig(brokerUrl: string): string {
  return `
config mqtt 'mqtt'
\toption enabled '1'
\toption url '${brokerUrl}'
\toption commands '1'
\toption command_secret '${SECRET}'
\toption keepalive '5'
\toption status_interval '5'
`;
}

export async function startService(v: Pick<Venue, 'db' | 'broker' | 'lines'>, names: string[], ttlMs: number) {
  const service = await startVenueService({
    db: v.db,
    url: v.broker.url,
    venues: new Map(names.map((n) => [n, VENUE])),
    keys: new Map([['*', SECRET]]),
    leaseTtlMs: ttlMs,
    resendMs: 1000,
    log: recordingLog(v.lines),
    clientId: `venue-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
  });
  await service.ready;
  return service;
}

/** Routers `names` of one venue, each with the clients `macs` on its portal. */
export async function startVenue(names: string[], macs: string[], o: { ttlMs?: number } = {}): Promise<Venue> {
  const [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
  const db = await freshDb(pg);
  await migrate(db, VENUE_MIGRATIONS);
  const lines: string[] = [];
  const service = await startService({ db, broker, lines }, names, o.ttlMs ?? 60_000);
  const routers = new Map<string, DaemonLab>();
  const venue: Venue = {
    pg,
    broker,
    db,
    service,
    routers,
    lines,
    async close() {
      for (const lab of routers.values()) await lab.close();
      await venue.service.stop();
      await db.close();
      await broker.close();
      await pg.close();
    },
  };
  try {
    for (const name of names) {
      const lab = await DaemonLab.create({
        routerId: name,
        pollInterval: 0.3,
        portalSocket: true,
        mainExtra: `\toption venue '${VENUE}'\n\toption venue_present_window '1'`,
        extraConfig: routerConfig(broker.url),
      });
      routers.set(name, lab);
      macs.forEach((mac, i) => lab.portal.addClient(mac, `10.0.0.${20 + i}`));
      await lab.startDaemon();
    }
  } catch (err) {
    await venue.close();
    throw err;
  }
  return venue;
}

export async function lease(db: Db, mac: string): Promise<Record<string, unknown> | undefined> {
  const rows = await db.query(`SELECT * FROM venue_leases WHERE mac = $1 ORDER BY since DESC LIMIT 1`, [mac]);
  return rows[0];
}
