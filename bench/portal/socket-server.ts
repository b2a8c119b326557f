// Child process of `npm run bench -- portal`: a simulated openNDS answering on an ndsctl.sock-style socket
// (src/sim/socket.ts: the portals' request/reply text, one connection at a time) over a live PortalModel, so `json`
// renders the current client list and `auth` / `deauth` change it, as the portal's ndsctl thread does.
// argv: <socketPath> <clients> <seed>. Prints `ready <bytes of json-all> <preauthenticated MACs, comma-separated>`.
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';
import { TrafficSimulator } from '../../src/sim/traffic.ts';

const [socketPath, clientsArg, seedArg] = process.argv.slice(2);
const portal = new PortalModel({ flavour: 'opennds' });
const sim = new TrafficSimulator(portal, { clients: Number(clientsArg), seed: Number(seedArg ?? 1), authenticatedShare: 0.6 });
sim.populate();
sim.step(10_000);
await listenNdsctlSocket(socketPath!, portalRequestHandler(portal));
const preauth = portal.clients().filter((c) => c.state === 'Preauthenticated').map((c) => c.mac);
process.stdout.write(`ready ${Buffer.byteLength(portal.renderJson('opennds'))} ${preauth.join(',')}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
