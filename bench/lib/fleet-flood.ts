// bench/fleet.ts --flood: how long the other routers' session messages wait (the ledger's received_at minus the
// message's own `at`) while the routers run at their rate, without and then with one router flooding paid session
// messages as fast as its connection takes them (100 publishes in flight), each phase `seconds` long.
import { loadavg } from 'node:os';
import mqtt from 'mqtt';
import type { Db } from '../../src/fleet/db/index.ts';
import { encode } from '../../src/upstream/mqtt/messages.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg()[0]!.toFixed(1);

/** A router publishing paid `started` messages back to back until stopped. */
async function flooder(url: string): Promise<{ stop: () => Promise<number> }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: 'sluice-flood', reconnectPeriod: 1000 });
  let seq = 0;
  let running = true;
  const one = async (): Promise<void> => {
    while (running) {
      const at = Date.now();
      const s = ++seq;
      const id = `flood-${s}`;
      const session = {
        ...{ id, mac: '02:00:00:ff:00:01', ip: '10.0.0.9', user: null, plan: 'hour', metric: 'seconds' },
        ...{ state: 'ACTIVE', cause: null, allotment: 3600, used: 0, bytes: 0, remaining: 3600, started_at: at },
        ...{ expires_at: at + 3_600_000, ended_at: null, at, rate_down: null, rate_up: null },
      };
      const payment = { method: 'x402', reference: `0x${id}`, amount: '1', asset: 'USDC', at };
      const body = { v: 1, router: 'flood', seq: s, type: 'session', at, event: 'started', session, payment };
      await client.publishAsync('sluice/flood/session', encode('msgpack', body), { qos: 1 });
    }
  };
  const workers = Array.from({ length: 100 }, one);
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
      await client.endAsync(true).catch(() => undefined);
      return seq;
    },
  };
}

async function delays(db: Db, since: number): Promise<{ n: number; p50: number; p99: number; max: number }> {
  const [r] = await db.query<{ n: string; p50: string | null; p99: string | null; max: string | null }>(
    `SELECT count(*)::text AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM m.received_at - m.at))::text AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM m.received_at - m.at))::text AS p99,
       max(extract(epoch FROM m.received_at - m.at))::text AS max
     FROM messages m JOIN routers r ON r.id = m.router_id
     WHERE m.kind = 2 AND r.name <> 'flood' AND m.at >= to_timestamp($1::double precision / 1000)`,
    [since],
  );
  return {
    n: Number(r!.n),
    p50: Number(r!.p50 ?? 0) * 1000,
    p99: Number(r!.p99 ?? 0) * 1000,
    max: Number(r!.max ?? 0) * 1000,
  };
}

const count = async (db: Db, sql: string): Promise<number> => Number((await db.query<{ n: string }>(sql))[0]!.n);

/**
 * Two phases of `run(seconds)` (the routers at their rate, resolving once every message was acknowledged by the
 * broker): without a flood, then with one; prints the other routers' session-message delay p50/p99 of each.
 */
export async function floodBench(
  db: Db,
  brokerUrl: string,
  routers: number,
  seconds: number,
  run: (seconds: number) => Promise<void>,
  sessionsSent: () => number,
): Promise<void> {
  const others = `SELECT count(*)::text AS n FROM messages m JOIN routers r ON r.id = m.router_id
    WHERE m.kind = 2 AND r.name <> 'flood'`;
  const flooded = `(SELECT count(*) FROM payments p JOIN routers r ON r.id = p.router_id WHERE r.name = 'flood')::text`;
  for (const flood of [false, true]) {
    const t0 = Date.now();
    const f = flood ? await flooder(brokerUrl) : null;
    await run(seconds);
    const sentFlood = f ? await f.stop() : 0;
    const window = (Date.now() - t0) / 1000;
    const storedInWindow = flood ? await count(db, `SELECT ${flooded} AS n`) : 0;
    const aside = flood ? await count(db, 'SELECT count(*)::text AS n FROM deferred_messages') : 0;
    // Every session message of the window stored before reading their delays (the routers' were all acknowledged).
    const t = Date.now();
    while ((await count(db, others)) < sessionsSent() && Date.now() - t < 600_000) await sleep(500);
    const d = await delays(db, t0);
    const label = flood
      ? `with one router flooding ${(sentFlood / window).toFixed(0)} paid session msg/s (${sentFlood} sent, ` +
        `${storedInWindow} stored and ${aside} kept aside at the window's end)`
      : 'no flood';
    console.log(
      `  flood       ${routers} routers at their rate for ${window.toFixed(0)} s, ${label}: the other routers' ` +
        `${d.n} session messages waited p50 ${d.p50.toFixed(0)} ms, p99 ${d.p99.toFixed(0)} ms, ` +
        `max ${d.max.toFixed(0)} ms; load ${load()}`,
    );
  }
  // Stops here: what the flood left aside would be stored by the collector for minutes more (its own turns), which
  // says nothing more about the other routers; its figures are the line above.
  const stored = await count(db, `SELECT ${flooded} AS n`);
  const left = await count(db, 'SELECT count(*)::text AS n FROM deferred_messages');
  console.log(`              the flood: ${stored} of its payments stored, ${left} still kept aside; load ${load()}`);
}
