// `npm run bench -- venue [--runs N]`: how long a device waits at the next router of its venue (docs/roaming.md,
// "Tested"), with real processes: two sluice daemons (dist/sluice.mjs) on a real mosquitto, the fleet's lease service
// on a real PostgreSQL 15, as test/venue/ runs them (`main.poll_interval` 0.3 s, `main.venue_present_window` 1 s).
// A data session hops between the two routers N times; each hop, once the device was idle at the router it left for
// longer than the present window, is timed from the phone's first request at the next router (GET /captive, which
// makes that router claim the session) to its gate open there. Prints each time, min / median / max and the load.
import { loadavg } from 'node:os';
import { deviceIp, deviceRequest, lease, startVenue } from '../test/venue/rig.ts';

const D = '02:00:00:00:5e:0b';

export default async function venueBench(argv: string[]): Promise<void> {
  const i = argv.indexOf('--runs');
  const runs = i >= 0 ? Math.max(1, Number(argv[i + 1])) : 6;
  const venue = await startVenue(['ra', 'rb'], [D], { http: true });
  try {
    const labs = [venue.routers.get('ra')!, venue.routers.get('rb')!];
    const ports = [venue.ports.get('ra')!, venue.ports.get('rb')!];
    await labs[0]!.call('grant', { mac: D, bytes: 64 * 1048576 });
    await labs[0]!.waitFor(() => labs[0]!.clientState(D) === 'Authenticated', 60_000, 'gate open at ra');
    await labs[0]!.waitFor(async () => (await lease(venue.db, D))?.['state'] === 'held', 60_000, 'the lease');
    const times: number[] = [];
    for (let hop = 0; hop < runs; hop++) {
      const [here, next] = [labs[hop % 2]!, labs[(hop + 1) % 2]!];
      await here.waitFor(() => here.clientState(D) === 'Authenticated', 60_000, `gate open, hop ${hop}`);
      await new Promise((r) => setTimeout(r, 1500)); // idle at `here` for longer than the present window
      if (next.clientState(D) === undefined) next.portal.addClient(D, deviceIp(0));
      const t0 = performance.now();
      await deviceRequest(ports[(hop + 1) % 2]!, deviceIp(0), '/captive');
      while (next.clientState(D) !== 'Authenticated') {
        if (performance.now() - t0 > 60_000) throw new Error(`hop ${hop}: no gate after 60 s`);
        await new Promise((r) => setTimeout(r, 5));
      }
      times.push(Math.round(performance.now() - t0));
      console.log(
        `hop ${hop + 1}: ${hop % 2 === 0 ? 'ra → rb' : 'rb → ra'} GET /captive → gate open ${times.at(-1)} ms`,
      );
    }
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `venue handover, first request at the next router → gate open: min ${sorted[0]} ms, median ${median} ms, ` +
        `max ${sorted.at(-1)} ms over ${runs} hops; load ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}`,
    );
  } finally {
    await venue.close();
  }
}
