// Child process of `npm run bench -- meter`: a simulated portal serving `json` over an ndsctl.sock-style socket.
// Frames are rendered up front (TrafficSimulator on a PortalModel, one poll interval apart), so that serving one costs
// what openNDS's socket costs (write the bytes) and rendering never competes with the meter during measurement.
// argv: <socketPath> <clients> <opennds|nodogsplash> <frames> <seed> [realistic] [nft:<dir>]
// realistic: each call burns the CPU a real openNDS 9.10 would with this many clients (test/peers/ndsctl-cost.ts):
// `json` ≈ 11 ms + 22 ms per client, before it answers.
// nft:<dir>: also writes each frame's kernel counters, as `nft -j list table inet sluice_count` prints them
// (bench/meter/nft-dump.ts), to <dir>/nft-<frame>.json: the kernel path's rows read those through a stand-in nft.
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket } from '../../src/sim/socket.ts';
import { TrafficSimulator } from '../../src/sim/traffic.ts';
import { burnCpu, openNdsCallCostMs } from '../../test/peers/ndsctl-cost.ts';
import { NftDumpWriter } from './nft-dump.ts';

const [socketPath, clientsArg, format, framesArg, seedArg, ...flags] = process.argv.slice(2);
const mode = flags.includes('realistic') ? 'realistic' : undefined;
const nftDir = flags.find((f) => f.startsWith('nft:'))?.slice(4);
const nft = nftDir === undefined ? undefined : new NftDumpWriter(nftDir);
const clients = Number(clientsArg);
const flavour = format === 'nodogsplash' ? 'nodogsplash' : 'opennds';
let now = 1_795_221_800;
const portal = new PortalModel({ flavour }, { clock: { now: () => now * 1000 } });
const sim = new TrafficSimulator(portal, {
  clients,
  seed: Number(seedArg ?? 1),
  authenticatedShare: 0.6,
  // Per simulated second; one frame is 10 s apart: ~1% of clients reset, leave or arrive between frames.
  resetChance: 0.001,
  departureChance: 0.001,
});
sim.populate();
const frames: Buffer[] = [];
for (let f = 0; f < Number(framesArg); f++) {
  sim.step(10_000);
  now += 10;
  frames.push(Buffer.from(portal.renderJson(flavour)));
  nft?.write(f, portal.renderJson('opennds'));
}
let next = 0;
await listenNdsctlSocket(socketPath!, (line) => {
  if (mode === 'realistic') burnCpu(openNdsCallCostMs(line.trim().split(/\s+/), clients));
  if (!line.startsWith('json')) return 'No';
  const frame = frames[Math.min(next, frames.length - 1)]!;
  next++;
  return frame;
});
process.stdout.write(`ready ${frames[0]!.length}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
