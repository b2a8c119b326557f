// `npm run bench -- voucher-flood`: how long a customer with a valid printed voucher waits while addresses flood the
// voucher door with wrong codes (docs/vouchers.md "Guessing"). The real plugin, merchant and session manager
// (test/payments/voucher-rig.ts) on a clock that moves one second per round of the flood; each flooding address asks
// every second, and the customer asks as the pay page does (again when told, after Retry-After). Floods:
//   joining   a flood of 100 addresses has emptied the router's bucket; 40 addresses it never used join it, and the
//             customer comes 10 s later;
//   rotating  30 addresses, each moved to a new MAC and IP every minute, for five minutes; a customer every minute;
//   per-guess a new MAC and IP on every guess, 5 a second (more new addresses than the credit covers: the limit).
// Prints per flood the customer's wait (the clock's seconds from his first ask to his sale, and the processing's
// wall time of his asks), the wrong codes looked at a minute, the CPU of a flooding address's refused ask (the
// process's user + system over the flood's asks, each refused: a wrong code or the guess limit), and the load.
import { loadavg } from 'node:os';
import { rmSync } from 'node:fs';
import { codeOf, rig } from '../test/payments/voucher-rig.ts';

type Rig = Awaited<ReturnType<typeof rig>>;
interface Who {
  mac: string;
  ip: string;
}

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
const hex = (n: number) => (n & 255).toString(16).padStart(2, '0');
const fresh = (n: number): Who => ({
  mac: `02:00:${hex(n >> 24)}:${hex(n >> 16)}:${hex(n >> 8)}:${hex(n)}`,
  ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
});

interface Customer {
  who: Who;
  code: string;
  /** The clock when he first asked, when he asks next; null once sold. */
  firstAt: number;
  nextAt: number | null;
  wallMs: number;
}

async function run(
  name: string,
  seconds: number,
  flooders: (s: number) => Who[],
  arrivals: (s: number) => boolean,
): Promise<void> {
  const r: Rig = await rig();
  const codes = (await r.book.create({ plan: 'hour', count: 100n, steps: 1n })).codes as string[];
  const start = r.time.now();
  let looked = 0;
  let floodCpuUs = 0;
  let floodAsks = 0;
  const customers: Customer[] = [];
  const waits: number[] = [];
  const walls: number[] = [];
  for (let s = 0; s < seconds; s++) {
    for (const who of flooders(s)) {
      const c0 = process.cpuUsage();
      const { code } = await codeOf(r.redeem(who.mac, '2222-2222-22', who.ip));
      const c = process.cpuUsage(c0);
      floodCpuUs += c.user + c.system;
      floodAsks++;
      if (code === 'ERR_VOUCHER_REJECTED') looked++;
    }
    if (arrivals(s)) {
      const n = customers.length;
      customers.push({
        who: fresh(0xfe0000 + n),
        code: codes[n]!,
        firstAt: r.time.now(),
        nextAt: r.time.now(),
        wallMs: 0,
      });
    }
    for (const c of customers) {
      if (c.nextAt === null || c.nextAt > r.time.now()) continue;
      const t0 = performance.now();
      const refused = await r.redeem(c.who.mac, c.code, c.who.ip).then(
        () => null,
        (err: { details?: Record<string, unknown> }) => err,
      );
      c.wallMs += performance.now() - t0;
      if (refused === null) {
        waits.push((r.time.now() - c.firstAt) / 1000);
        walls.push(c.wallMs);
        c.nextAt = null;
      } else c.nextAt = r.time.now() + Number(refused.details?.retry_after ?? 60) * 1000;
    }
    await r.time.advance(1000);
  }
  const unsold = customers.filter((c) => c.nextAt !== null).length;
  const minutes = (r.time.now() - start) / 60_000;
  const sorted = waits.sort((x, y) => x - y);
  const wait = sorted.length ? `max ${sorted.at(-1)} s, median ${sorted[Math.floor(sorted.length / 2)]} s` : '-';
  console.log(
    `voucher flood (${name}): customer's wait ${wait} over ${waits.length} sold` +
      `${unsold ? `, ${unsold} still waiting` : ''}; his asks' processing max ${Math.max(0, ...walls).toFixed(1)} ` +
      `ms; wrong codes looked at ${(looked / minutes).toFixed(0)} a minute over ${minutes.toFixed(0)} min; ` +
      `a refused ask ${(floodCpuUs / floodAsks).toFixed(1)} µs of CPU (${floodAsks}); load ${load()}`,
  );
  await r.close();
  rmSync(r.dir, { recursive: true, force: true });
}

export default async function voucherFloodBench(): Promise<void> {
  const emptying = Array.from({ length: 100 }, (_, i) => fresh(1000 + i));
  const joining = Array.from({ length: 40 }, (_, i) => fresh(3000 + i));
  await run(
    'joining: 40 new addresses join a flood of 100',
    120,
    (s) => (s < 50 ? emptying : [...emptying, ...joining]),
    (s) => s === 60,
  );
  await run(
    'rotating: 30 addresses moved every minute',
    300,
    (s) => Array.from({ length: 30 }, (_, i) => fresh(10_000 + Math.floor(s / 60) * 30 + i)),
    (s) => s % 60 === 30,
  );
  let next = 100_000;
  await run(
    'per-guess: a new address on every guess, 5 a second',
    600,
    () => Array.from({ length: 5 }, () => fresh(next++)),
    (s) => s % 60 === 30,
  );
}
