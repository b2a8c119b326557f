// Child process of `npm run bench -- portal`: a simulated openNDS answering on an ndsctl.sock-style socket
// (src/sim/socket.ts: the portals' request/reply text, one connection at a time) over a live PortalModel, so `json`
// renders the current client list and `auth` / `deauth` change it, as the portal's ndsctl thread does.
// argv: <socketPath> <clients> <seed> [live]. With `live`, traffic advances in real time (the meter bench's purchases
// row; see LIVE_FRAME_MS). Prints `ready <bytes of json-all> <preauthenticated MACs, comma-separated>`.
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';
import { TrafficSimulator } from '../../src/sim/traffic.ts';

const [socketPath, clientsArg, seedArg, mode] = process.argv.slice(2);
const portal = new PortalModel({ flavour: 'opennds' });
const sim = new TrafficSimulator(portal, { clients: Number(clientsArg), seed: Number(seedArg ?? 1), authenticatedShare: 0.6 });
sim.populate();
sim.step(10_000);
const answer = portalRequestHandler(portal);
let last = performance.now();
// `live`: traffic steps and the full list is rendered every LIVE_FRAME_MS in the background, and `json` answers the
// latest frame: rendering 10k clients in JavaScript takes 100+ ms (more under load), which a tick's fetch would
// otherwise wait for, measuring the simulator instead of sluice. Counters (and gates opened or closed since) show up
// to one frame late, as if the portal sampled its counters every half second; `json <mac>`, auth and deauth are live.
const LIVE_FRAME_MS = 500;
let frame = Buffer.alloc(0);
if (mode === 'live') {
  const render = (): void => {
    const now = performance.now();
    sim.step(now - last);
    last = now;
    frame = Buffer.from(portal.renderJson('opennds'));
  };
  render();
  setInterval(render, LIVE_FRAME_MS);
}
// Without `live`, the list of all clients is rendered once per change (auth/deauth), so `json` costs the portal only
// writing its bytes: the figures are the channel's and sluice's side, not the simulator's JavaScript rendering.
let rendered: Buffer | undefined;
await listenNdsctlSocket(socketPath!, (line) => {
  if (mode === 'live') return line === 'json' ? frame : answer(line);
  if (line === 'json') return (rendered ??= Buffer.from(answer(line) as string));
  if (line.startsWith('auth ') || line.startsWith('deauth ')) rendered = undefined;
  return answer(line);
});
const preauth = portal.clients().filter((c) => c.state === 'Preauthenticated').map((c) => c.mac);
process.stdout.write(`ready ${Buffer.byteLength(portal.renderJson('opennds'))} ${preauth.join(',')}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
