// `npm run bench -- venue [--runs N] [--poll S]`: how long a device waits at the next router of its venue
// (docs/roaming.md, "Tested"), with real processes: two sluice daemons (dist/sluice.mjs) on a real mosquitto, the
// fleet's lease service on a real PostgreSQL 15, as test/venue/ runs them (`main.venue_present_window` 1 s, the
// default; `main.poll_interval` 0.3 s, or S). A data session hops between the two routers N times in each of two
// ways, each hop timed from the phone's first request at the next router (GET /captive, which makes that router claim
// the session) to its gate open there:
//   idle      the device was idle at the router it left for longer than the present window;
//   just-left the device's last traffic at the router it left was billed there a moment before that first request
//             (the present window then counts: the router it left waits for it to pass before it lets go).
// Prints each time, min / median / max per way and the load.
// `npm run bench -- venue --flood [--claims N] [--rounds R]`: one router's flood of claims beside the others'
// payments and claims instead (bench/lib/venue-flood.ts).
import { loadavg } from 'node:os';
import { venueFloodBench } from './lib/venue-flood.ts';
import type { DaemonLab } from '../test/daemon/harness.ts';
import { deviceIp, deviceRequest, lease, startVenue, usedBy } from '../test/venue/rig.ts';

const D = '02:00:00:00:5e:0b';

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

function summary(way: string, times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return (
    `venue handover (${way}), first request at the next router → gate open: min ${sorted[0]} ms, ` +
    `median ${median} ms, max ${sorted.at(-1)} ms over ${times.length} hops; load ${load()}`
  );
}

/** Waits until `lab` billed `mac` more than `before`. */
async function billed(lab: DaemonLab, before: bigint): Promise<void> {
  const t0 = performance.now();
  while ((await usedBy(lab, D)) <= before) {
    if (performance.now() - t0 > 60_000) throw new Error('no usage billed after 60 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export default async function venueBench(argv: string[]): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (argv.includes('--flood'))
    return venueFloodBench({
      claims: Math.max(1, Number(arg('--claims') ?? 1000)),
      rounds: Math.max(1, Number(arg('--rounds') ?? 20)),
    });
  const runs = Math.max(1, Number(arg('--runs') ?? 6));
  const poll = Number(arg('--poll') ?? 0.3);
  const venue = await startVenue(['ra', 'rb'], [D], { http: true, pollInterval: { ra: poll, rb: poll } });
  try {
    const labs = [venue.routers.get('ra')!, venue.routers.get('rb')!];
    const ports = [venue.ports.get('ra')!, venue.ports.get('rb')!];
    await labs[0]!.call('grant', { mac: D, bytes: 256 * 1048576 });
    await labs[0]!.waitFor(() => labs[0]!.clientState(D) === 'Authenticated', 60_000, 'gate open at ra');
    await labs[0]!.waitFor(async () => (await lease(venue.db, D))?.['state'] === 'held', 60_000, 'the lease');
    const results: Array<[string, number[]]> = [];
    let hop = 0;
    for (const way of ['idle', 'just-left'] as const) {
      const times: number[] = [];
      for (let n = 0; n < runs; n++, hop++) {
        const [here, next] = [labs[hop % 2]!, labs[(hop + 1) % 2]!];
        await here.waitFor(() => here.clientState(D) === 'Authenticated', 60_000, `gate open, hop ${hop}`);
        await new Promise((r) => setTimeout(r, 1500)); // idle at `here` for longer than the present window
        if (way === 'just-left') {
          const before = await usedBy(here, D);
          here.portal.addTraffic(D, 64 * 1024, 0);
          await billed(here, before);
        }
        if (next.clientState(D) === undefined) next.portal.addClient(D, deviceIp(0));
        const t0 = performance.now();
        await deviceRequest(ports[(hop + 1) % 2]!, deviceIp(0), '/captive');
        while (next.clientState(D) !== 'Authenticated') {
          if (performance.now() - t0 > 60_000) throw new Error(`hop ${hop}: no gate after 60 s`);
          await new Promise((r) => setTimeout(r, 5));
        }
        times.push(Math.round(performance.now() - t0));
        console.log(
          `${way} hop ${n + 1}: ${hop % 2 === 0 ? 'ra → rb' : 'rb → ra'} GET /captive → gate open ` +
            `${times.at(-1)} ms (load ${load()})`,
        );
      }
      results.push([way, times]);
    }
    console.log(`poll_interval ${poll} s, venue_present_window 1 s`);
    for (const [way, times] of results) console.log(summary(way, times));
  } finally {
    await venue.close();
  }
}
