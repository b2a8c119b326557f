/**
 * A simulated portal served on its control socket, as openNDS serves ndsctl: each request line the valve sends
 * (`json`, `json <mac>`, `auth <mac> …`) is recorded in order, so a test can count the portal calls a path makes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Valve } from '../../src/portal/index.ts';
import { listenNdsctlSocket, portalRequestHandler, type PortalModel } from '../../src/sim/index.ts';

export interface RecordedPortal {
  /** The socket's path (a Meter's `source`). */
  path: string;
  calls: string[];
  /** A valve on that socket (flavour opennds). */
  valve: Valve;
  close(): Promise<void>;
}

export async function recordedPortalSocket(model: PortalModel): Promise<RecordedPortal> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-portal-'));
  const calls: string[] = [];
  const handler = portalRequestHandler(model);
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), (line) => {
    calls.push(line);
    return handler(line);
  });
  const valve = new Valve({ command: ['ndsctl'], socketPath: () => server.path, flavour: 'opennds' });
  return {
    path: server.path,
    calls,
    valve,
    async close() {
      await valve.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
