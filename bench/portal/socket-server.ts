// Child process of `npm run bench -- portal`: a simulated openNDS answering on an ndsctl.sock-style socket
// (src/sim/socket.ts: the portals' request/reply text, one connection at a time) over a live PortalModel, so `json`
// renders the current client list and `auth` / `deauth` change it, as the portal's ndsctl thread does.
// argv: <socketPath> <clients> <seed> [live]. With `live`, traffic advances in real time (the meter bench's purchases
// row; see LIVE_FRAME_MS). Prints `ready <bytes of json-all> <preauthenticated MACs, comma-separated>`.
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';
import { TrafficSimulator } from '../../src/sim/traffic.ts';
import { renderOpenNdsClient } from '../../src/sim/portal-render.ts';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';

const [socketPath, clientsArg, seedArg, mode] = process.argv.slice(2);
const portal = new PortalModel({ flavour: 'opennds' });
const sim = new TrafficSimulator(portal, {
  clients: Number(clientsArg),
  seed: Number(seedArg ?? 1),
  authenticatedShare: 0.6,
});
sim.populate();
sim.step(10_000);
const answer = portalRequestHandler(portal);
let last = performance.now();
// `live`: traffic steps and the full list is re-rendered continuously in the background, at most every LIVE_FRAME_MS,
// in slices of 50 clients with an event-loop turn between them (a reply of 8.9 MB goes out in ~45 socket writes, each
// waiting for a slice), and `json` answers the latest complete frame. Rendering 10k clients one by one in JavaScript
// takes 30–160 ms on this shared VM (the first of eight renders the slowest; 2026-11-30, load 0.5): done in one piece
// per request (or per frame) it would block the socket, so the ticks' fetches and the purchases' auths would measure
// the simulator, not sluice. Counters (and gates opened or closed since) show up one
// frame late, as if the portal sampled its counters that often; `json <mac>`, auth and deauth are answered live.
const LIVE_FRAME_MS = 500;
let frame: Buffer = Buffer.alloc(0);
async function renderSliced(): Promise<Buffer> {
  const clients = portal.clients();
  const now = Math.floor(Date.now() / 1000);
  const indent = '    ';
  const parts: string[] = [`{\n  "client_list_length":"${clients.length}",\n  "clients":{\n`];
  for (let i = 0; i < clients.length; i++) {
    const c = clients[i]!;
    parts.push(
      `${i === 0 ? '' : `${indent}},\n`}${indent}"${c.mac}":{\n`,
      renderOpenNdsClient(c, portal.config, now, indent),
    );
    if (i % 50 === 49) await turn();
  }
  if (clients.length > 0) parts.push(`${indent}}\n`);
  parts.push('  }\n}\n');
  return Buffer.from(parts.join(''));
}
if (mode === 'live') {
  frame = await renderSliced();
  void (async () => {
    for (;;) {
      const started = performance.now();
      sim.step(started - last);
      last = started;
      frame = await renderSliced();
      await sleep(Math.max(0, LIVE_FRAME_MS - (performance.now() - started)));
    }
  })();
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
const preauth = portal
  .clients()
  .filter((c) => c.state === 'Preauthenticated')
  .map((c) => c.mac);
process.stdout.write(`ready ${Buffer.byteLength(portal.renderJson('opennds'))} ${preauth.join(',')}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
