// `npm run bench -- fleet [--routers 1000] [--sessions 32] [--seconds 60] [--backlog 20] [--year-routers 100]
//                         [--year-venues 3] [--venue-sessions 288] [--connections 32] [--writers 4]
//                         [--ledger-rows 43200]
//                         [--only real,size,capacity,flood,year,ledger | --skip …] [--flood]
//                         [--collector-prof DIR]`   (DIR: each collector's node --cpu-prof profile)
// The parts run in that order; all but flood by default (--flood adds it). The ingest's three goals, one at a time:
//   --only real --seconds 300       one collector at 1,000 routers' rate: stored ÷ published over 5 minutes
//   --only capacity --backlog 60    the rate one collector sustains, then two of one group: what the second adds
//   --only flood --seconds 60       the other routers' session-message delay without and with one router flooding
// The fleet's collector (dist/fleet/fleet.mjs, its own process, `--connections` members of its group, `--writers`
// transactions in flight) between a real mosquitto and a real PostgreSQL 15 (test/peers: Debian's, fsync on), fed by
// simulated routers, each its own MQTT 5 connection with the package's settings (QoS 1, keepalive 60 s, MessagePack;
// a usage report of its 32 sessions every 2 s, above any router's rate (usage goes out per journal write: each
// checkpoint_interval, 5 s at least, 300 s by default); a status every 60 s; each session bought for an
// hour, so a start with its payment and an end per session and hour) publishing the maps sluice's builders make
// (test/fleet/rig.ts's FakeRouter):
// 1. real rate: what one collector stores per second of what the routers send, how far it falls behind, and who
//    used the CPU meanwhile (bench/lib/fleet-probe.ts: PostgreSQL, mosquitto, the collector, the routers);
// 2. database size per router-month: bytes per stored row of each table after the real-rate run (VACUUM'd),
//    times the rows a router makes in 30 days;
// 3. capacity: a backlog queued at the broker while the collectors are away (`--backlog` seconds of the routers'
//    reports), then drained by one collector, then by two of one shared group (each stopped and started with it):
//    messages and session rows per second from the ledger's received_at;
// 4. the dashboard's Revenue page on a year of `--year-routers` routers' roll-up rows made with generate_series,
//    in UTC, Europe/Berlin, Asia/Kolkata and Asia/Kathmandu, for 14 days and a year (bench/lib/fleet-year.ts); its
//    Routers, a router's, Venues (a year of `--year-venues` venues of 10 routers, each selling `--venue-sessions`
//    venue sessions a day) and Alerts pages (a year of alerts: bench/lib/fleet-year-venues.ts);
// 5. the ledger at a year of `--year-routers` routers: the Routers page's gap query and a retention pass
//    (bench/lib/fleet-gaps.ts);
// 6. with --flood: the other routers' session-message delay at their rate, without and with one router flooding
//    (bench/lib/fleet-flood.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { FLEET_MIGRATIONS, migrate, openPostgres, type Db } from '../src/fleet/db/index.ts';
import { floodBench } from './lib/fleet-flood.ts';
import { cpuSeconds, cpuWindow, pidOf, postgresCpu, sampleBackends, type Meter } from './lib/fleet-probe.ts';
import { ledgerBench } from './lib/fleet-gaps.ts';
import { yearBench } from './lib/fleet-year.ts';
import { encode, loadMsgpack } from '../src/upstream/mqtt/messages.ts';
import { Mosquitto } from '../test/peers/mosquitto.ts';
import { Postgres } from '../test/peers/postgres.ts';

await loadMsgpack();

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FLEET = `${ROOT}dist/fleet/fleet.mjs`;
const POLL_MS = 2000;
const STATUS_MS = 60_000;
const SESSION_MS = 3_600_000;
const MONTH_S = 30 * 86400;

function arg(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg()[0]!.toFixed(1);

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

class Collector {
  out = '';
  private child: ChildProcess | undefined;
  constructor(
    readonly dbUrl: string,
    readonly brokerUrl: string,
    readonly id: string,
    readonly connections: number,
    readonly writers: number,
    /** A directory for the collector's CPU profiles (node --cpu-prof), or none. */
    readonly profDir = '',
  ) {}

  async start(): Promise<void> {
    const before = this.subscribed();
    const child = spawn(
      process.execPath,
      [
        ...(this.profDir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${this.profDir}`]),
        FLEET,
        '--db',
        this.dbUrl,
        '--broker',
        this.brokerUrl,
        '--client-id',
        this.id,
        '--group',
        'bench',
      ].concat(['--connections', String(this.connections), '--writers', String(this.writers), '--listen', 'none']),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d) => (this.out += d));
    child.stderr!.on('data', (d) => (this.out += d));
    this.child = child;
    await until(() => this.subscribed() >= before + this.connections, 120_000, `collector ${this.id} subscribed`);
  }

  subscribed(): number {
    return this.out.split('fleet: subscribed').length - 1;
  }

  cpu(): number {
    const child = this.child;
    return child?.pid === undefined || child.exitCode !== null || child.signalCode !== null ? 0 : cpuSeconds(child.pid);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(20_000)]);
    child.kill('SIGKILL');
  }
}

const FIELDS = ['id', 'mac', 'user', 'metric', 'up', 'down', 'bytes', 'used', 'allotment', 'remaining', 'state'];

/** One router: its sessions, its series, its connection. */
class SimRouter {
  seq = 0;
  lastSession = 0;
  sent = { usage: 0, session: 0, status: 0 };
  nextUsage: number;
  nextStatus: number;
  readonly sessions: number;
  private readonly slots: Array<{ id: string; mac: string; used: number; ends: number; n: number }> = [];
  constructor(
    readonly name: string,
    readonly client: MqttClient,
    sessions: number,
    now: number,
  ) {
    this.sessions = sessions;
    // Staggered: the routers' ticks and their sessions' ends spread over the period, as unsynchronised routers are.
    this.nextUsage = now + Math.random() * POLL_MS;
    this.nextStatus = now + Math.random() * STATUS_MS;
    for (let i = 0; i < sessions; i++) {
      const mac = `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      this.slots.push({ id: `${name}-${i}-0`, mac, used: 0, ends: now + Math.random() * SESSION_MS, n: 0 });
    }
  }

  private env(type: string, at: number) {
    const seq = ++this.seq;
    const env = { v: 1, router: this.name, seq, prev_session_seq: this.lastSession, type, at };
    if (type === 'session') this.lastSession = seq;
    return env;
  }

  private publish(kind: 'usage' | 'session' | 'status', body: unknown, retain = false): Promise<unknown> {
    this.sent[kind]++;
    return this.client.publishAsync(`sluice/${this.name}/${kind}`, encode('msgpack', body), { qos: 1, retain });
  }

  private session(s: { id: string; mac: string; used: number }, at: number, state: string) {
    return {
      ...{ id: s.id, mac: s.mac, ip: '10.0.0.2', user: null, plan: 'hour', metric: 'seconds', state, cause: null },
      ...{ allotment: 3600, used: s.used, bytes: s.used * 50_000, remaining: 3600 - s.used, started_at: at },
      ...{ expires_at: at + SESSION_MS, ended_at: state === 'ACTIVE' ? null : at, at, rate_down: null, rate_up: null },
    };
  }

  /** What is due at `now`: session ends and starts, the tick's usage report, the status. */
  due(now: number): Promise<unknown>[] {
    const out: Promise<unknown>[] = [];
    for (const s of this.slots) {
      if (s.ends > now) continue;
      out.push(this.publish('session', { ...this.env('session', now), event: 'ended', ...this.ended(s, now) }));
      s.n++;
      s.id = `${this.name}-${this.slots.indexOf(s)}-${s.n}`;
      s.used = 0;
      s.ends = now + SESSION_MS;
      const payment = { method: 'x402', reference: `0x${s.id}`, amount: '500000', asset: 'USDC', at: now };
      const body = { event: 'started', session: this.session(s, now, 'ACTIVE'), payment };
      out.push(this.publish('session', { ...this.env('session', now), ...body }));
    }
    if (this.nextUsage <= now) {
      this.nextUsage += POLL_MS;
      out.push(this.usage(now));
    }
    if (this.nextStatus <= now) {
      this.nextStatus += STATUS_MS;
      out.push(this.status(now));
    }
    return out;
  }

  private ended(s: { id: string; mac: string; used: number }, now: number) {
    return {
      session: this.session(s, now, 'TERMINATED'),
      payments: [{ method: 'x402', reference: `0x${s.id}` }],
    };
  }

  usage(now: number): Promise<unknown> {
    const rows = this.slots.map((s) => {
      s.used += 2;
      return [s.id, s.mac, null, 'seconds', 30_000, 120_000, s.used * 75_000, s.used, 3600, 3600 - s.used, 'ACTIVE'];
    });
    return this.publish('usage', { ...this.env('usage', now), part: 0, parts: 1, fields: FIELDS, sessions: rows });
  }

  status(now: number): Promise<unknown> {
    const body = { v: 1, router: this.name, seq: this.seq, type: 'status', at: now, online: true, version: 'bench' };
    return this.publish('status', { ...body, uptime_s: 1000, queue: { pending: 0, bytes: 0, dropped: 0, expired: 0 } });
  }
}

async function connectRouters(url: string, n: number, sessions: number): Promise<SimRouter[]> {
  const routers: SimRouter[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, k) => `r${String(i + k).padStart(4, '0')}`);
    const clients = await Promise.all(
      batch.map((name) =>
        mqtt.connectAsync(url, {
          protocolVersion: 5,
          clientId: `sluice-${name}`,
          keepalive: 60,
          reconnectPeriod: 1000,
        }),
      ),
    );
    clients.forEach((c, k) => routers.push(new SimRouter(batch[k]!, c, sessions, Date.now())));
  }
  return routers;
}

/** Runs the routers at their rate for `seconds`; resolves once every message sent was acknowledged. */
async function runAtRate(routers: SimRouter[], seconds: number): Promise<void> {
  const pending = new Set<Promise<unknown>>();
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const now = Date.now();
    for (const r of routers)
      for (const p of r.due(now)) {
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
    await sleep(10);
  }
  await Promise.all([...pending]);
}

const sent = (routers: SimRouter[]) =>
  routers.reduce(
    (a, r) => ({
      usage: a.usage + r.sent.usage,
      session: a.session + r.sent.session,
      status: a.status + r.sent.status,
    }),
    { usage: 0, session: 0, status: 0 },
  );

const count = async (db: Db, sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql))[0]!.n);
const stored = (db: Db) => count(db, 'SELECT count(*)::text AS n FROM messages');

async function freshDb(pg: Postgres, name: string): Promise<{ db: Db; url: string }> {
  const admin = await openPostgres({ url: pg.url(), max: 1 });
  await admin.exec(`CREATE DATABASE ${name}`);
  await admin.close();
  const db = await openPostgres({ url: pg.url(name) });
  await migrate(db, FLEET_MIGRATIONS);
  return { db, url: pg.url(name) };
}

/** The CPU this bench's peers, collectors and routers (this process) use, each by name. */
function meterOf(pg: Postgres, broker: Mosquitto, collectors: Collector[]): Meter {
  const mosquitto = pidOf(broker.dir);
  return {
    read: () => {
      const own = process.cpuUsage();
      return {
        PostgreSQL: postgresCpu(pg.data),
        mosquitto: mosquitto === undefined ? 0 : cpuSeconds(mosquitto),
        ...Object.fromEntries(collectors.map((c) => [c.id, c.cpu()])),
        'routers (the bench)': (own.user + own.system) / 1e6,
      };
    },
  };
}

/**
 * One collector at the routers' rate for `seconds`: the messages with a ledger row (usage and session messages; a
 * status has none) stored in the window ÷ those published in it, how far behind it fell, and who used the CPU.
 */
async function realRate(db: Db, meter: Meter, a: Collector, routers: SimRouter[], seconds: number): Promise<void> {
  const before = sent(routers);
  const storedBefore = await stored(db);
  const t0 = Date.now();
  const cpu = cpuWindow(meter);
  const backends = sampleBackends(db, 'fleet_bench');
  const loads = [load()];
  const run = runAtRate(routers, seconds);
  let behindMax = 0;
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(Math.min(5000, t0 + seconds * 1000 - Date.now() + 50));
    const s = sent(routers);
    behindMax = Math.max(
      behindMax,
      s.usage + s.session - before.usage - before.session - ((await stored(db)) - storedBefore),
    );
    loads.push(load());
  }
  await run;
  const window = (Date.now() - t0) / 1000;
  const inWindow = (await stored(db)) - storedBefore;
  const used = cpu.done(inWindow);
  const busy = await backends.stop();
  const s = sent(routers);
  const offered = {
    usage: s.usage - before.usage,
    session: s.session - before.session,
    status: s.status - before.status,
  };
  const total = offered.usage + offered.session;
  await until(async () => (await stored(db)) - storedBefore >= total, 600_000, 'the backlog stored');
  const drained = (Date.now() - t0) / 1000;
  const ratio = inWindow / total;
  console.log(
    `  real rate   ${routers.length} routers for ${window.toFixed(0)} s: sent ${(offered.usage / window).toFixed(0)} ` +
      `usage + ${(offered.session / window).toFixed(1)} session + ${(offered.status / window).toFixed(1)} status ` +
      `msg/s (${((offered.usage * routers[0]!.sessions) / window).toFixed(0)} session rows/s)`,
  );
  console.log(
    `              one collector stored ${(inWindow / window).toFixed(0)} msg/s of ${(total / window).toFixed(0)}: ` +
      `stored ÷ published ${ratio.toFixed(3)} (${ratio >= 0.99 ? 'kept up' : 'BEHIND'}: goal ≥ 0.99), at most ` +
      `${behindMax} behind; all ${total} stored ${(drained - window).toFixed(0)} s after the window`,
  );
  console.log(`              CPU of a core: ${used}; PostgreSQL's ${busy}; load ${loads.join(' ')}`);
}

/** Key columns to vary per table, so N copies of one stored row fit its unique indexes. */
const VARY: Record<string, string> = {
  messages: "jsonb_build_object('seq', g)",
  sessions: "jsonb_build_object('id', x.id || '-' || g)",
  payments: "jsonb_build_object('seq', g, 'session_id', x.session_id || '-' || g)",
  revenue_days: "jsonb_build_object('day', x.day + g)",
  usage_hours: "jsonb_build_object('hour', x.hour + g * interval '1 hour')",
};

/**
 * Bytes per row of each table with its indexes, from 50,000 copies of one row the run stored (a handful of rows says
 * nothing: an index's first page is 8 KiB), then what a router's 30 days of rows take at the rate simulated.
 */
async function sizes(db: Db, sessions: number): Promise<void> {
  const copies = 50_000;
  const perRow: Record<string, number> = {};
  for (const [t, vary] of Object.entries(VARY)) {
    await db.exec(`DROP TABLE IF EXISTS size_probe; CREATE TABLE size_probe (LIKE ${t} INCLUDING ALL)`);
    await db.exec(
      `INSERT INTO size_probe SELECT (jsonb_populate_record(null::${t}, to_jsonb(x) || ${vary})).*
       FROM (SELECT * FROM ${t} LIMIT 1) x, generate_series(1, ${copies}) g`,
    );
    await db.exec('VACUUM ANALYZE size_probe');
    perRow[t] = (await count(db, "SELECT pg_total_relation_size('size_probe')::text AS n")) / copies;
  }
  await db.exec('DROP TABLE size_probe');
  // A router's rows in 30 days at the rate simulated: a usage report every poll, a start and an end per session-hour.
  const hours = (MONTH_S * 1000) / SESSION_MS;
  const month: Record<string, number> = {
    messages: MONTH_S / (POLL_MS / 1000) + hours * sessions * 2,
    sessions: hours * sessions,
    payments: hours * sessions,
    revenue_days: 30,
    usage_hours: 30 * 24,
  };
  let total = 0;
  const parts: string[] = [];
  for (const [t, n] of Object.entries(month)) {
    const bytes = n * perRow[t]!;
    total += bytes;
    parts.push(`${t} ${(bytes / 1e6).toFixed(1)} MB (${Math.round(n)} rows x ${perRow[t]!.toFixed(0)} B)`);
  }
  console.log(`  per router-month  ${(total / 1e6).toFixed(0)} MB: ${parts.join(', ')}`);
  const db1 = await count(db, 'SELECT pg_database_size(current_database())::text AS n');
  console.log(`              the run's database: ${(db1 / 1e6).toFixed(1)} MB`);
}

/**
 * The rate the collectors sustain: a backlog of `seconds` of the routers' usage reports queued at the broker while
 * they are away, then drained: messages per second from the ledger's received_at, and who used the CPU meanwhile.
 */
async function capacity(
  db: Db,
  meter: Meter,
  routers: SimRouter[],
  collectors: Collector[],
  seconds: number,
): Promise<number> {
  for (const c of collectors) await c.stop();
  const mark = (await db.query<{ t: string }>("SELECT (now() + interval '1 second')::text AS t"))[0]!.t;
  await sleep(1500);
  // The backlog: `seconds` of every router's usage reports, sent as fast as the broker takes them.
  const t0 = Date.now();
  const ticks = Math.round((seconds * 1000) / POLL_MS);
  const inflight: Promise<unknown>[] = [];
  for (let t = 0; t < ticks; t++) {
    const now = Date.now();
    for (const r of routers) inflight.push(r.usage(now));
    await Promise.all(inflight.splice(0));
  }
  const queued = ticks * routers.length;
  console.log(
    `  capacity    ${queued} usage reports (${queued * routers[0]!.sessions} session rows) queued at the ` +
      `broker in ${((Date.now() - t0) / 1000).toFixed(1)} s; load ${load()}`,
  );
  const storedBefore = await stored(db);
  await Promise.all(collectors.map((c) => c.start()));
  const cpu = cpuWindow(meter);
  const backends = sampleBackends(db, 'fleet_bench');
  // Polled once a second: a count of the whole ledger is PostgreSQL's work too.
  for (const t = Date.now(); (await stored(db)) - storedBefore < queued; await sleep(1000))
    if (Date.now() - t > 900_000) throw new Error('timed out waiting for the backlog drained');
  const used = cpu.done(queued);
  const busy = await backends.stop();
  const [r] = await db.query<{ n: string; s: string }>(
    `SELECT count(*)::text AS n, extract(epoch FROM max(received_at) - min(received_at))::text AS s
     FROM messages WHERE received_at > $1::timestamptz`,
    [mark],
  );
  const s = Number(r!.s);
  const rate = Number(r!.n) / s;
  console.log(
    `              ${collectors.length} collector(s): ${rate.toFixed(0)} msg/s, ` +
      `${((Number(r!.n) * routers[0]!.sessions) / s).toFixed(0)} session rows/s (${r!.n} in ${s.toFixed(1)} s); ` +
      `load ${load()}`,
  );
  console.log(`              CPU of a core: ${used}; PostgreSQL's ${busy}`);
  return rate;
}

export default async function fleet(argv: string[]): Promise<void> {
  const n = Number(arg(argv, 'routers', '1000'));
  const sessions = Number(arg(argv, 'sessions', '32'));
  const seconds = Number(arg(argv, 'seconds', '60'));
  const backlog = Number(arg(argv, 'backlog', '20'));
  const yearRouters = Number(arg(argv, 'year-routers', '100'));
  const yearVenues = Number(arg(argv, 'year-venues', '3'));
  const venueSessions = Number(arg(argv, 'venue-sessions', '288'));
  const connections = Number(arg(argv, 'connections', '32'));
  const writers = Number(arg(argv, 'writers', '4'));
  const ledgerRows = Number(arg(argv, 'ledger-rows', '43200'));
  const only = arg(argv, 'only', '');
  const skip = new Set(arg(argv, 'skip', '').split(','));
  const part = (name: string) =>
    only === '' ? !skip.has(name) && (name !== 'flood' || argv.includes('--flood')) : only.split(',').includes(name);
  const flood = part('flood');
  const collecting = part('real') || part('capacity') || flood;
  if (collecting && !existsSync(FLEET)) throw new Error(`${FLEET} is missing: npm run build`);
  console.log(
    `fleet: ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
  const { db, url } = await freshDb(pg, 'fleet_bench');
  const prof = arg(argv, 'collector-prof', '');
  const a = new Collector(url, broker.url, 'bench-a', connections, writers, prof);
  const b = new Collector(url, broker.url, 'bench-b', connections, writers, prof);
  const meter = meterOf(pg, broker, [a, b]);
  let routers: SimRouter[] = [];
  try {
    if (collecting) {
      await a.start();
      routers = await connectRouters(broker.url, n, sessions);
      console.log(`  ${routers.length} routers connected; load ${load()}`);
    }
    if (part('real')) await realRate(db, meter, a, routers, seconds);
    if (part('size') && part('real')) await sizes(db, sessions);
    if (part('capacity')) {
      const one = await capacity(db, meter, routers, [a], backlog);
      // The second collector joins the group once (its sessions then take their share of what is queued).
      await b.start();
      const two = await capacity(db, meter, routers, [a, b], backlog);
      console.log(
        `              the second collector adds ${((two - one) / one).toFixed(2)}× the first's rate (goal ≥ 0.7)`,
      );
    }
    if (flood)
      await floodBench(
        db,
        broker.url,
        routers.length,
        seconds,
        (s) => runAtRate(routers, s),
        () => sent(routers).session,
      );
    if (part('year')) {
      const year = await freshDb(pg, 'fleet_bench_year');
      await yearBench(year.db, yearRouters, { venues: yearVenues, sessionsPerRouterDay: venueSessions }).finally(() =>
        year.db.close(),
      );
    }
    if (part('ledger')) {
      const ledger = await freshDb(pg, 'fleet_bench_ledger');
      await ledgerBench(ledger.db, yearRouters, ledgerRows).finally(() => ledger.db.close());
    }
  } finally {
    await Promise.all(routers.map((r) => r.client.endAsync(true).catch(() => undefined)));
    await a.stop();
    await b.stop();
    await db.close();
    await broker.close();
    await pg.close();
  }
}
