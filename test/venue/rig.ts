/**
 * A venue of real routers for the roaming tests: sluice daemons (dist/sluice.mjs, one ubus broker and portal each)
 * on a real mosquitto, and the fleet's venue lease service on a real PostgreSQL 15 (docs/roaming.md).
 */
import { request } from 'node:http';
import type { Test } from 'uvu';
import { DaemonLab } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
import { Cuttable } from './cut.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { Postgres } from '../peers/postgres.ts';
import { freshDb, recordingLog } from '../fleet/rig.ts';
import { migrate, type Db } from '../../src/fleet/db/index.ts';
import { startVenueService, VENUE_MIGRATIONS, type VenueService } from '../../src/fleet/venue/index.ts';

export const SECRET = 'venue-test-command-secret';
export const VENUE = 'hall';
export const MiB = 1048576;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** What `lab`'s session for `mac` has used, in bytes. */
export const usedBy = async (lab: DaemonLab, mac: string): Promise<bigint> =>
  BigInt((await lab.session(mac)).used as string);
/** How many of `lab`'s meter ticks have read the counters. */
export const ticksOk = async (lab: DaemonLab): Promise<number> =>
  ((await lab.call('stats')).meter as { ticks_ok: number }).ticks_ok;

export interface Venue {
  pg: Postgres;
  broker: Mosquitto;
  db: Db;
  service: VenueService;
  routers: Map<string, DaemonLab>;
  /** Each router's LAN endpoint (127.0.0.1:<port>) when started with `http`. */
  ports: Map<string, number>;
  /** The relays between routers and the broker, for the routers started with `cuttable`. */
  relays: Map<string, Cuttable>;
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

/**
 * The fleet's venue service. Its venues file lists each of `names` in VENUE, or in `listed[name]` when given ('': not
 * listed at all); the routers themselves all say VENUE.
 */
export async function startService(
  v: Pick<Venue, 'db' | 'broker' | 'lines'>,
  names: string[],
  ttlMs: number,
  listed?: Record<string, string>,
  trialHoldMs?: number,
) {
  const service = await startVenueService({
    db: v.db,
    url: v.broker.url,
    venues: new Map(names.map((n): [string, string] => [n, listed?.[n] ?? VENUE]).filter(([, v]) => v !== '')),
    keys: new Map([['*', SECRET]]),
    leaseTtlMs: ttlMs,
    resendMs: 1000,
    chargeEveryMs: 1000,
    ...(trialHoldMs !== undefined && { trialHoldMs }),
    log: recordingLog(v.lines, 'fleet venue service'),
    clientId: `venue-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
  });
  await service.ready;
  return service;
}

/**
 * A free trial plan (the LAN endpoint then serves POST /trial): one sale any test can make from a device; `limit`: its
 * `trial_limit` (trials at the router, all devices together).
 */
const trialPlan = (limit?: number): string => `
config pricing 'trial'
\toption metric 'bytes'
\toption step_size '1048576'
\toption price_per_step '0'
\toption min_steps '1'
\toption trial_every '86400'
${limit === undefined ? '' : `\toption trial_limit '${limit}'\n`}`;

/** The address of the i-th device on every router's portal (with `http`: a loopback address it can send from). */
export const deviceIp = (i: number, http = true): string => (http ? `127.0.0.${20 + i}` : `10.0.0.${20 + i}`);

/**
 * Routers `names` of one venue, each with the clients `macs` on its portal. `http`: each router's LAN endpoint on
 * loopback with a free trial plan, the devices at 127.0.0.20… so a test sends their requests from their address.
 * `elsewhere`: routers of the venue the caller starts itself (a daemon on a real portal in the e2e lab). `config`: UCI
 * sections every router gets (plans). `listed`: the fleet's venues file, as startService takes it. `trialLimit`: the
 * trial plan's `trial_limit`; `trialHoldMs`: the service's hold on a trial claimed.
 */
export async function startVenue(
  names: string[],
  macs: string[],
  o: {
    ttlMs?: number;
    http?: boolean;
    pollInterval?: Record<string, number>;
    cuttable?: string[];
    elsewhere?: string[];
    config?: string;
    listed?: Record<string, string>;
    trialLimit?: number;
    trialHoldMs?: number;
  } = {},
): Promise<Venue> {
  const [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
  const db = await freshDb(pg);
  await migrate(db, VENUE_MIGRATIONS);
  const lines: string[] = [];
  const service = await startService({ db, broker, lines }, names, o.ttlMs ?? 60_000, o.listed, o.trialHoldMs);
  const routers = new Map<string, DaemonLab>();
  const ports = new Map<string, number>();
  const relays = new Map<string, Cuttable>();
  const venue: Venue = {
    pg,
    broker,
    db,
    service,
    routers,
    ports,
    relays,
    lines,
    async close() {
      for (const lab of routers.values()) await lab.close();
      for (const relay of relays.values()) await relay.cut();
      await venue.service.stop();
      await db.close();
      await broker.close();
      await pg.close();
    },
  };
  try {
    for (const name of names.filter((n) => !o.elsewhere?.includes(n))) {
      const port = o.http ? await freePort() : 0;
      if (o.http) ports.set(name, port);
      const http = o.http
        ? `\nconfig http 'http'\n\toption listen '127.0.0.1:${port}'\n${trialPlan(o.trialLimit)}`
        : '';
      if (o.cuttable?.includes(name)) relays.set(name, await Cuttable.open(Number(new URL(broker.url).port)));
      const brokerUrl = relays.get(name)?.url ?? broker.url;
      const lab = await DaemonLab.create({
        routerId: name,
        pollInterval: o.pollInterval?.[name] ?? 0.3,
        portalSocket: true,
        mainExtra: `\toption venue '${VENUE}'`, // venue_present_window: the default (1 s)
        extraConfig: routerConfig(brokerUrl) + http + (o.config ?? ''),
      });
      routers.set(name, lab);
      macs.forEach((mac, i) => lab.portal.addClient(mac, deviceIp(i, o.http === true)));
      await lab.startDaemon();
    }
  } catch (err) {
    await venue.close();
    throw err;
  }
  return venue;
}

/**
 * The venues a file's tests start, each closed after its test whatever it ended with: `start` is startVenue, for the
 * test that calls it.
 */
export function venuePerTest(test: Test): { start: typeof startVenue } {
  let venue: Venue | undefined;
  test.after.each(async () => {
    await venue?.close();
    venue = undefined;
  });
  return {
    async start(...args) {
      venue = await startVenue(...args);
      return venue;
    },
  };
}

/**
 * The device `mac` busy at `ra` (16 KiB every 200 ms) when `rb` claims it: `ra`'s release waits for it to leave, and
 * `ra` is killed -9 then. What the traffic added at `ra` until the kill.
 */
export async function killedInRelease(v: Venue, ra: DaemonLab, rb: DaemonLab, mac: string): Promise<bigint> {
  let added = 0n;
  let busy = true;
  const traffic = (async () => {
    while (busy) {
      ra.portal.addTraffic(mac, 16 * 1024, 0);
      added += 16n * 1024n;
      await sleep(200);
    }
  })();
  await rb.call('venue_claim', { mac });
  await ra.waitFor(async () => (await lease(v.db, mac))?.['state'] === 'releasing', 30_000, 'the release sent');
  await ra.stopDaemon('SIGKILL');
  busy = false;
  await traffic;
  return added;
}

export async function lease(db: Db, mac: string): Promise<Record<string, unknown> | undefined> {
  const rows = await db.query(`SELECT * FROM venue_leases WHERE mac = $1 ORDER BY since DESC LIMIT 1`, [mac]);
  return rows[0];
}

/** A request to `port` from the device at `from` (the endpoint finds its MAC by that address). */
export function deviceRequest(
  port: number,
  from: string,
  path: string,
  init: { method?: string; body?: string } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: init.method ?? 'GET',
        localAddress: from,
        agent: false,
        headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}
