/**
 * `sluice-fleet` (npm run fleet): the collector (and the operator's dashboard) on a server or a laptop, never on a
 * router. A bundle and a command of its own (dist/fleet/fleet.mjs, scripts/build.mjs), which the router's package does
 * not contain and the router's sluice.mjs does not name.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { startCollector } from './collector/index.ts';
import { FLEET_MIGRATIONS, migrate, openDb } from './db/index.ts';

export const FLEET_USAGE = `usage: sluice-fleet [options]   (npm run fleet -- [options])
  --db URL|DIR          postgres://user@host:port/db (a PostgreSQL server), or a directory for the embedded
                        PGlite database (default ./sluice-fleet-db; memory: for none)
  --broker URL          the routers' MQTT broker (default mqtt://127.0.0.1:1883)
  --prefix P            the routers' mqtt.topic_prefix (default sluice)
  --group G             the shared subscription's group: collectors of one group split the stream (default
                        sluice-fleet)
  --client-id ID        this collector's MQTT client id, fixed so the broker keeps its session (default
                        sluice-fleet-<hostname>); each of its connections adds -<n>
  --connections N       members of the group this collector opens: messages in flight at once (default 4)
  --mqtt-version 4|5    5 (default): shared subscriptions; 4: MQTT 3.1.1, plain subscriptions (one collector)
  --username U          the collector's broker user
  --password-file F     its password, read from F (never given on the command line)
  --migrate-only        bring the database's schema up to date and exit
`;

export async function runFleet(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        db: { type: 'string', default: './sluice-fleet-db' },
        broker: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
        prefix: { type: 'string', default: 'sluice' },
        group: { type: 'string', default: 'sluice-fleet' },
        'client-id': { type: 'string', default: `sluice-fleet-${hostname()}` },
        connections: { type: 'string', default: '4' },
        'mqtt-version': { type: 'string', default: '5' },
        username: { type: 'string' },
        'password-file': { type: 'string' },
        'migrate-only': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`sluice-fleet: ${(err as Error).message}\n${FLEET_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(FLEET_USAGE);
    return 0;
  }
  const connections = Number(values.connections);
  const version = Number(values['mqtt-version']);
  if (!Number.isInteger(connections) || connections < 1 || connections > 64 || (version !== 4 && version !== 5)) {
    process.stderr.write(`sluice-fleet: --connections takes 1…64, --mqtt-version 4 or 5\n${FLEET_USAGE}`);
    return 2;
  }
  const log = createLogger({ timestamps: true });
  const db = await openDb(values.db);
  try {
    const applied = await migrate(db, FLEET_MIGRATIONS);
    if (applied.length > 0) log.info('fleet: schema migrated', { applied: applied.join(',') });
  } catch (err) {
    log.error('fleet: cannot use the database', {
      code: (err as { code?: string }).code,
      error: (err as Error).message,
    });
    await db.close();
    return 1;
  }
  if (values['migrate-only']) {
    await db.close();
    return 0;
  }
  const password =
    values['password-file'] === undefined ? undefined : readFileSync(values['password-file'], 'utf8').trim();
  const collector = await startCollector({
    db,
    url: values.broker,
    prefix: values.prefix,
    group: values.group,
    clientId: values['client-id'],
    connections,
    protocolVersion: version,
    ...(values.username !== undefined && { username: values.username }),
    ...(password !== undefined && { password }),
    log,
  });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info('fleet: stopping', { ...collector.stats(), reasons: JSON.stringify(collector.stats().reasons) });
  await collector.stop();
  await db.close();
  return 0;
}
