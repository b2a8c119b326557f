// `npm run bench -- venue --flood [--claims N] [--rounds R]`: what one router's flood of venue claims costs the others
// (docs/fleet-performance.md, "A router's venue flood"), with real processes: mosquitto, PostgreSQL 15, the fleet's
// lease service on its own connections (VENUE_CONNECTIONS, as sluice-fleet opens them) beside a collector. R rounds
// without the flood, then R with router `rx` publishing bursts of N claims for new MACs back to back; each round,
// router `rc` reports a payment (timed from its publish to its row in `payments`) and router `rb` claims a MAC (timed
// from its publish to the service's `venue_answer` for it). Prints each way's min / median / p95 / max, the claims the
// flooder sent and how many the service refused (over its bound per router), and the load.
import { loadavg } from 'node:os';
import mqtt from 'mqtt';
import { collector, FakeRouter, freshDb, recordingLog } from '../../test/fleet/rig.ts';
import { Mosquitto } from '../../test/peers/mosquitto.ts';
import { Postgres } from '../../test/peers/postgres.ts';
import { migrate, openPostgres } from '../../src/fleet/db/index.ts';
import { startVenueService, VENUE_CONNECTIONS, VENUE_MIGRATIONS } from '../../src/fleet/venue/index.ts';

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const macOf = (prefix: number, i: number): string =>
  `02:00:${prefix.toString(16).padStart(2, '0')}:${((i >> 16) & 255).toString(16).padStart(2, '0')}:` +
  `${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

function summary(what: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return `${what}: min ${s[0]} ms, median ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${s.at(-1)} ms over ${s.length}`;
}

export async function venueFloodBench(o: { claims: number; rounds: number }): Promise<void> {
  const [pg, broker] = await Promise.all([Postgres.create(), Mosquitto.create()]);
  const lines: string[] = [];
  const db = await freshDb(pg);
  await migrate(db, VENUE_MIGRATIONS);
  const [{ name }] = (await db.query<{ name: string }>('SELECT current_database() AS name')) as [{ name: string }];
  const venueDb = await openPostgres({ url: pg.url(name), max: VENUE_CONNECTIONS });
  const service = await startVenueService({
    db: venueDb,
    url: broker.url,
    venues: new Map(['rx', 'rb', 'rc'].map((n): [string, string] => [n, 'hall'])),
    keys: new Map([['*', 'k']]),
    log: recordingLog(lines),
  });
  await service.ready;
  const fleet = await collector(db, broker.url, lines);
  // The service's answers to rb, by MAC: when each arrived.
  const answered = new Map<string, number>();
  const listener = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  listener.on('message', (_topic, payload) => {
    const c = JSON.parse(JSON.parse(payload.toString()).command as string) as { cmd: string; args: { mac: string } };
    if (c.cmd === 'venue_answer') answered.set(c.args.mac, performance.now());
  });
  await listener.subscribeAsync('sluice/rb/cmd', { qos: 1 });
  const [rx, rb, rc] = await Promise.all(['rx', 'rb', 'rc'].map((n) => FakeRouter.connect(n, broker.url)));
  const claim = (r: FakeRouter, mac: string) =>
    r.publish('venue', { kind: 'claim', router: r.name, mac, venue: 'hall' }, 'json');
  let n = 0;
  async function round(way: string, i: number): Promise<[number, number]> {
    const ref = `ref-${way}-${i}`;
    const t0 = performance.now();
    await rc!.started(`${way}-${i}`, '2100', ref);
    while ((await db.query('SELECT 1 FROM payments WHERE reference = $1', [ref])).length === 0) {
      if (performance.now() - t0 > 120_000) throw new Error(`payment ${ref} not stored after 120 s`);
      await sleep(5);
    }
    const paid = Math.round(performance.now() - t0);
    const mac = macOf(0xb0, ++n);
    const t1 = performance.now();
    await claim(rb!, mac);
    while (!answered.has(mac)) {
      if (performance.now() - t1 > 120_000) throw new Error(`claim of ${mac} not answered after 120 s`);
      await sleep(5);
    }
    return [paid, Math.round(answered.get(mac)! - t1)];
  }
  try {
    const results: Array<[string, number[], number[]]> = [];
    let flooding = false;
    let sent = 0;
    let flood: Promise<void> = Promise.resolve();
    for (const way of ['quiet', 'flood'] as const) {
      if (way === 'flood') {
        flooding = true;
        flood = (async () => {
          while (flooding) {
            const burst = Array.from({ length: o.claims }, () => macOf(0xf0, ++sent));
            await Promise.all(burst.map((mac) => claim(rx!, mac)));
          }
        })();
        await sleep(1000);
      }
      const paid: number[] = [];
      const claimed: number[] = [];
      const from = { sent, at: performance.now(), load: load() };
      for (let i = 0; i < o.rounds; i++) {
        const [p, c] = await round(way, i);
        paid.push(p);
        claimed.push(c);
        await sleep(200);
      }
      const rate = Math.round(((sent - from.sent) * 1000) / (performance.now() - from.at));
      const flooder = way === 'flood' ? `, rx sending ${rate} claims/s in bursts of ${o.claims}` : '';
      console.log(`${way}: ${o.rounds} rounds${flooder}; load ${from.load} → ${load()}`);
      results.push([way, paid, claimed]);
    }
    flooding = false;
    await flood;
    const stats = service.stats();
    for (const [way, paid, claimed] of results) {
      console.log(summary(`${way}: rc's payment stored`, paid));
      console.log(summary(`${way}: rb's claim answered`, claimed));
    }
    console.log(
      `rx sent ${sent} claims; the service refused ${stats['dropped']} (its bound per router); load ${load()}`,
    );
  } finally {
    await listener.endAsync(true);
    for (const r of [rx, rb, rc]) await r?.close();
    await service.stop();
    await fleet.stop();
    await venueDb.close();
    await db.close();
    await broker.close();
    await pg.close();
  }
}
