/**
 * `sluice-fleet` (npm run fleet): the collector (and the operator's dashboard) on a server or a laptop, never on a
 * router. A bundle and a command of its own (dist/fleet/fleet.mjs, scripts/build.mjs), which the router's package does
 * not contain and the router's sluice.mjs does not name.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger, type LogFields } from '../log.ts';
import { DEFAULT_RETENTION_DAYS, retentionPass, startCollector } from './collector/index.ts';
import { databaseUnreachable, FLEET_MIGRATIONS, migrate, openDb, openPostgres } from './db/index.ts';
import {
  checkTimeZone,
  connectMqttBus,
  DASHBOARD_MIGRATIONS,
  DEFAULT_STALE_AFTER_MS,
  parseCommandKeys,
  setUser,
  startAlerts,
  startDashboard,
  TimeZoneError,
} from './dashboard/index.ts';
import { parseVenues, startVenueService, VENUE_CONNECTIONS, VENUE_MIGRATIONS } from './venue/index.ts';

export const FLEET_USAGE = `usage: sluice-fleet [options]   (npm run fleet -- [options])
       sluice-fleet user NAME --role admin|operator [--db URL|DIR]   (the password is read from stdin)
       sluice-fleet demo [--port P] [--seconds S]   (npm run demo -- --fleet)
       sluice-fleet prune [--db URL|DIR] [--retention-days N]   (one pass of the ledger's retention, then exit)
  --db URL|DIR          postgres://user@host:port/db (a PostgreSQL server), or a directory for the embedded
                        PGlite database (default ./sluice-fleet-db; memory: for none)
  --broker URL          the routers' MQTT broker (default mqtt://127.0.0.1:1883)
  --prefix P            the routers' mqtt.topic_prefix (default sluice)
  --group G             the shared subscription's group: collectors of one group split the stream (default
                        sluice-fleet)
  --client-id ID        this collector's MQTT client id, fixed so the broker keeps its session (default
                        sluice-fleet-<hostname>); each of its connections adds -<n>
  --connections N       members of the group this collector opens: messages in flight at once (default 32)
  --writers N           transactions of usage reports in flight at once, each with the reports that arrived
                        meanwhile (default 4)
  --mqtt-version 4|5    5 (default): shared subscriptions; 4: MQTT 3.1.1, plain subscriptions (one collector)
  --username U          the collector's broker user
  --password-file F     its password, read from F (never given on the command line)
  --listen HOST:PORT    the dashboard's address (default 127.0.0.1:8080; none: no dashboard)
  --command-keys F      "<router> <secret>" lines (or "* <secret>"): the routers' MQTT command keys, for the
                        dashboard's actions (without it the dashboard only shows)
  --stale-after S       a router silent this many seconds is red (default 90)
  --time-zone ZONE      the fleet's time zone, an IANA name (Europe/Berlin): days and hours on the dashboard's
                        pages, charts and CSVs, and the times in alert mails (default UTC; a user may choose
                        their own on Settings). The database and its views keep UTC
  --sendmail PATH       the host's mail transport for alert mails when no SMTP server is set on Settings, run
                        as PATH -t (default /usr/sbin/sendmail; absent: without an SMTP server, webhook only)
  --venues F            "<venue> <router> <router>…" lines: runs the venue lease service (docs/roaming.md) for
                        them; needs --command-keys (its answers are the routers' signed commands)
  --lease-ttl S         a venue session's holder not heard for this long loses it to the next claim (default 90;
                        longer for a holder whose status declares a longer lease_ttl: docs/roaming.md)
  --retention-days N    keep each usage/session message's ledger row N days after it came, then prune it (its
                        sums stay in the roll-ups, its number in the router's spans); 0: keep them for good
                        (default 35)
  --migrate-only        bring the database's schema up to date and exit
`;

/** --retention-days in ms: null for 0 (kept for good), undefined when it is not a whole number of days. */
export function retentionMsOf(text: string): number | null | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const days = Number(text);
  return days === 0 ? null : days * 86_400_000;
}

export async function runFleet(argv: string[]): Promise<number> {
  if (argv[0] === 'demo') return (await import('./demo/index.ts')).runFleetDemo(argv.slice(1));
  if (argv[0] === 'user') return addUser(argv.slice(1));
  if (argv[0] === 'prune') return prune(argv.slice(1));
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
        connections: { type: 'string', default: '32' },
        writers: { type: 'string', default: '4' },
        'mqtt-version': { type: 'string', default: '5' },
        username: { type: 'string' },
        'password-file': { type: 'string' },
        'migrate-only': { type: 'boolean', default: false },
        listen: { type: 'string', default: '127.0.0.1:8080' },
        'command-keys': { type: 'string' },
        'stale-after': { type: 'string', default: '90' },
        'time-zone': { type: 'string', default: 'UTC' },
        sendmail: { type: 'string', default: '/usr/sbin/sendmail' },
        venues: { type: 'string' },
        'lease-ttl': { type: 'string', default: '90' },
        'retention-days': { type: 'string', default: String(DEFAULT_RETENTION_DAYS) },
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
  const writers = Number(values.writers);
  const version = Number(values['mqtt-version']);
  const counts = [connections, writers].every((n) => Number.isInteger(n) && n >= 1 && n <= 64);
  const retentionMs = retentionMsOf(values['retention-days']);
  if (!counts || (version !== 4 && version !== 5) || retentionMs === undefined) {
    const usage = `--connections and --writers take 1…64, --mqtt-version 4 or 5, --retention-days a whole number`;
    process.stderr.write(`sluice-fleet: ${usage}\n${FLEET_USAGE}`);
    return 2;
  }
  const log = createLogger({ timestamps: true });
  const db = await openDb(values.db);
  // A database that is not up yet (both started at boot, or restarting) is waited for, as the stream waits for it
  // later; one that refuses us for good (password, schema too new) ends the command.
  for (let pause = 250; ; pause = Math.min(pause * 2, 5000)) {
    try {
      const applied = await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS, ...VENUE_MIGRATIONS]);
      if (applied.length > 0) log.info('fleet: schema migrated', { applied: applied.join(',') });
      break;
    } catch (err) {
      const fields = { code: (err as { code?: string }).code, error: (err as Error).message };
      if (!databaseUnreachable(err)) {
        log.error('fleet: cannot use the database', fields);
        await db.close();
        return 1;
      }
      if (pause === 250) log.warn('fleet: database not reachable yet: waiting for it', fields);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
  if (values['migrate-only']) {
    await db.close();
    return 0;
  }
  let zone: string;
  try {
    zone = await checkTimeZone(db, values['time-zone']);
  } catch (err) {
    if (!(err instanceof TimeZoneError)) throw err;
    process.stderr.write(`sluice-fleet: --time-zone: ${err.message}\n`);
    await db.close();
    return 2;
  }
  const password =
    values['password-file'] === undefined ? undefined : readFileSync(values['password-file'], 'utf8').trim();
  const listen = values.listen === 'none' ? null : /^(.+):(\d+)$/.exec(values.listen);
  const staleAfterS = Number(values['stale-after']);
  const staleAfterMs = Number.isFinite(staleAfterS) && staleAfterS > 0 ? staleAfterS * 1000 : DEFAULT_STALE_AFTER_MS;
  const bus =
    listen === null || values['command-keys'] === undefined
      ? null
      : await connectMqttBus({
          url: values.broker,
          prefix: values.prefix,
          ...(values.username !== undefined && { username: values.username }),
          ...(password !== undefined && { password }),
        });
  // The dashboard's address first, before anything subscribes: an address in use (a second collector on this host
  // with the same --listen) is a clear error and an exit, not a crash after the collector took its share.
  let dashboard;
  try {
    dashboard =
      listen === null
        ? null
        : await startDashboard({
            db,
            host: listen[1]!,
            port: Number(listen[2]),
            bus,
            prefix: values.prefix,
            ...(values['command-keys'] !== undefined && {
              commandKeys: parseCommandKeys(readFileSync(values['command-keys'], 'utf8')),
            }),
            staleAfterMs,
            timeZone: zone,
            log: (message, fields) => log.info(`fleet dashboard: ${message}`, fields as LogFields | undefined),
          });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    await bus?.close();
    await db.close();
    if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') throw err;
    log.error(
      `fleet: cannot serve the dashboard on ${values.listen} (${String(code)}): another program (a second ` +
        'collector on this host?) has it; give each collector its own --listen HOST:PORT, or --listen none',
    );
    return 1;
  }
  const collector = await startCollector({
    db,
    url: values.broker,
    prefix: values.prefix,
    group: values.group,
    clientId: values['client-id'],
    connections,
    writers,
    protocolVersion: version,
    retentionMs,
    ...(values.username !== undefined && { username: values.username }),
    ...(password !== undefined && { password }),
    log,
  });
  // The venue lease service (docs/roaming.md): its answers are commands signed with the routers' keys.
  const venueFile = values.venues;
  const leaseTtlS = Number(values['lease-ttl']);
  // Its own connections to PostgreSQL: a router's flood of claims never waits in the collector's pool (PGlite is one
  // connection in this process, shared).
  const venueDb =
    venueFile === undefined || db.kind !== 'postgres'
      ? db
      : await openPostgres({ url: values.db, max: VENUE_CONNECTIONS });
  const venue =
    venueFile === undefined
      ? null
      : await startVenueService({
          db: venueDb,
          url: values.broker,
          prefix: values.prefix,
          ...(values.username !== undefined && { username: values.username }),
          ...(password !== undefined && { password }),
          clientId: `${values['client-id']}-venue`,
          venues: parseVenues(readFileSync(venueFile, 'utf8')),
          keys: parseCommandKeys(
            values['command-keys'] === undefined ? '' : readFileSync(values['command-keys'], 'utf8'),
          ),
          ...(Number.isFinite(leaseTtlS) && leaseTtlS > 0 && { leaseTtlMs: leaseTtlS * 1000 }),
          log,
        });
  // Every collector evaluates and sends alerts: the database decides which one finds a change and which one sends it.
  const alerts = startAlerts({
    db,
    staleAfterMs,
    zone,
    sendmailPath: values.sendmail,
    log: (message, fields) => log.info(`fleet alerts: ${message}`, fields as LogFields | undefined),
  });
  if (dashboard !== null) log.info('fleet: dashboard', { url: dashboard.url });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await alerts.stop();
  await dashboard?.close();
  await bus?.close();
  await venue?.stop();
  if (venueDb !== db) await venueDb.close();
  log.info('fleet: stopping', { ...collector.stats(), reasons: JSON.stringify(collector.stats().reasons) });
  await collector.stop();
  await db.close();
  return 0;
}

/** `sluice-fleet user NAME --role admin|operator`: the password from stdin, stored only as its salted scrypt hash. */
async function addUser(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { role: { type: 'string' }, db: { type: 'string', default: './sluice-fleet-db' } },
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`sluice-fleet user: ${(err as Error).message}\n${FLEET_USAGE}`);
    return 2;
  }
  const name = parsed.positionals[0];
  if (name === undefined || parsed.values.role === undefined) {
    process.stderr.write(`sluice-fleet user: a NAME and --role are needed\n${FLEET_USAGE}`);
    return 2;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  const db = await openDb(parsed.values.db);
  try {
    await migrate(db, [...FLEET_MIGRATIONS, ...DASHBOARD_MIGRATIONS, ...VENUE_MIGRATIONS]);
    await setUser(db, name, parsed.values.role, password);
    process.stdout.write(`sluice-fleet: user ${name} (${parsed.values.role}) set\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`sluice-fleet user: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await db.close();
  }
}

/** `sluice-fleet prune`: one pass of the ledger's retention (spans, then the rows past the window), for a cron job. */
async function prune(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        db: { type: 'string', default: './sluice-fleet-db' },
        'retention-days': { type: 'string', default: String(DEFAULT_RETENTION_DAYS) },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`sluice-fleet prune: ${(err as Error).message}\n${FLEET_USAGE}`);
    return 2;
  }
  const retentionMs = retentionMsOf(values['retention-days']);
  if (retentionMs === undefined) {
    process.stderr.write(`sluice-fleet prune: --retention-days takes a whole number\n${FLEET_USAGE}`);
    return 2;
  }
  const db = await openDb(values.db);
  try {
    await migrate(db, FLEET_MIGRATIONS);
    const r = await retentionPass(db, { retentionMs });
    process.stdout.write(
      `sluice-fleet prune: ${r.routers} routers, ${r.spanned} rows into spans, ${r.pruned} pruned\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`sluice-fleet prune: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await db.close();
  }
}
