/**
 * `sluice-fleet demo` (`npm run demo -- --fleet`): the whole fleet on a laptop in one command, nothing installed
 * beside Node: three routers (the real daemon, each with its simulated openNDS and clients who buy time and data), an
 * embedded MQTT broker (aedes: MQTT 3.1.1, so one collector with plain subscriptions), an embedded PostgreSQL
 * (PGlite), the collector and the dashboard. Prints the dashboard's address and an admin login; Ctrl-C ends it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../../log.ts';
import { startCollector } from '../collector/index.ts';
import { connectMqttBus, setUser, startDashboard } from '../dashboard/index.ts';
import { openPglite } from '../db/index.ts';
import { DEMO_CHECKPOINT_S, startDemoRouter, type DemoRouter } from './routers.ts';

export const FLEET_DEMO_USAGE = `usage: sluice-fleet demo [--port P] [--seconds S]   (npm run demo -- --fleet [...])
  --port P      the dashboard's port on 127.0.0.1 (default 8080; 0: any free one)
  --seconds S   stop after S seconds (default: run until Ctrl-C)
`;

const ROUTERS = ['cafe-north', 'cafe-south', 'station'];

export async function runFleetDemo(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '8080' },
        seconds: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`sluice-fleet demo: ${(err as Error).message}\n${FLEET_DEMO_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(FLEET_DEMO_USAGE);
    return 0;
  }
  const port = Number(values.port);
  const seconds = values.seconds === undefined ? null : Number(values.seconds);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || (seconds !== null && !(seconds >= 1))) {
    process.stderr.write(`sluice-fleet demo: --port takes 0…65535, --seconds a number ≥ 1\n${FLEET_DEMO_USAGE}`);
    return 2;
  }
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const log = createLogger({
    level: process.env['SLUICE_FLEET_DEMO_LOG'] === 'info' ? 'info' : 'warn',
    timestamps: true,
  });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fleet-demo-'));
  const stops: Array<() => Promise<unknown>> = [];
  let code = 0;
  try {
    say('sluice fleet demo: starting the embedded broker and database (the database takes ~10-20 s the first time)');
    const { Aedes } = await import('aedes');
    const aedes = await Aedes.createBroker();
    const mqttServer = createServer(aedes.handle);
    await new Promise<void>((resolve) => mqttServer.listen(0, '127.0.0.1', resolve));
    const brokerUrl = `mqtt://127.0.0.1:${(mqttServer.address() as AddressInfo).port}`;
    stops.push(async () => {
      mqttServer.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    });
    const db = await openPglite();
    stops.push(() => db.close());
    const dashboardPassword = randomBytes(9).toString('base64url');
    const commandSecret = randomBytes(24).toString('base64url');
    const bus = await connectMqttBus({ url: brokerUrl, prefix: 'sluice', clientId: 'sluice-fleet-demo-dashboard' });
    stops.push(() => bus.close());
    // The dashboard first: it brings the schema (the collector's and its own) up to date.
    const dashboard = await startDashboard({
      db,
      port,
      bus,
      commandKeys: new Map([['*', commandSecret]]),
      // The demo's routers send their status every 10 s: silent for 25 s is red.
      staleAfterMs: 25_000,
    });
    stops.push(() => dashboard.close());
    await setUser(db, 'admin', 'admin', dashboardPassword);
    const collector = await startCollector({
      db,
      url: brokerUrl,
      prefix: 'sluice',
      protocolVersion: 4,
      connections: 1,
      clientId: 'sluice-fleet-demo-collector',
      log,
    });
    stops.push(() => collector.stop());
    const routers: DemoRouter[] = [];
    for (const [i, name] of ROUTERS.entries()) {
      routers.push(
        await startDemoRouter({
          name,
          dir: join(dir, name),
          brokerUrl,
          commandSecret,
          clients: 40 + i * 20,
          seed: 100 + i,
          salesPerMinute: 6 + i * 3,
          log,
        }),
      );
    }
    stops.push(async () => {
      for (const r of routers) await r.stop();
    });
    say(`sluice fleet demo: ${ROUTERS.length} routers (${ROUTERS.join(', ')}) report to the broker ${brokerUrl}`);
    say(
      `  usage reaches the broker once a router's checkpoint has written it to flash: every ${DEMO_CHECKPOINT_S} s ` +
        'here (main.checkpoint_interval, 300 s as shipped)',
    );
    say(`  dashboard: ${dashboard.url}`);
    say(`  log in as: admin   password: ${dashboardPassword}`);
    say('  (an admin can end a session or grant time on the Routers pages; Ctrl-C ends the demo)');
    if (process.env['SLUICE_FLEET_DEMO_LOG'] === 'info')
      setInterval(() => process.stderr.write(`collector ${JSON.stringify(collector.stats())}\n`), 5000).unref();
    // `on`, not `once`: Ctrl-C in a terminal comes twice (to the process group, and passed on by `sluice demo
    // --fleet`), and a second signal with no listener would end the process before its routers are stopped.
    await new Promise<void>((resolve) => {
      process.on('SIGINT', () => resolve());
      process.on('SIGTERM', () => resolve());
      if (seconds !== null) setTimeout(resolve, seconds * 1000).unref();
    });
  } catch (err) {
    code = 1;
    process.stderr.write(`sluice-fleet demo: ${err instanceof Error ? err.message : String(err)}\n`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  return code;
}
