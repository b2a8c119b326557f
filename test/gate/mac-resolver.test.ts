// tier: fast
// Which client sent a LAN request (gate/mac-resolver.ts): the neighbour table's entry first, a file read, and the
// portal's list only for an address the table cannot place, against the ndsctl socket stand-in.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { macResolver } from '../../src/gate/mac-resolver.ts';
import { Valve } from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/index.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';

const A = '02:00:00:00:0d:01';
const B = '02:00:00:00:0d:02';
const NEW = '02:00:00:00:0d:03';

test('the neighbour table answers first; the portal is listed only for an address it cannot place', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-resolver-'));
  const portal = new PortalModel({ flavour: 'opennds' });
  portal.addClient(A, '10.0.0.2');
  portal.addClient(B, '10.0.0.3');
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
  const valve = new Valve({ command: ['/nonexistent/ndsctl'], socketPath: () => server.path, flavour: 'opennds' });
  // 10.0.0.2 is held now by another device than the one the portal listed there (a lease that moved).
  const table = new Map([['10.0.0.2', NEW]]);
  const asked: string[] = [];
  const { macOf } = macResolver({
    valve,
    meter: { clientAddresses: async () => null },
    fetchTimeoutMs: 1000,
    devices: ['br-lan'],
    neighbourMac: async (ip) => {
      asked.push(ip);
      return table.get(ip) ?? null;
    },
  });
  try {
    assert.is(await macOf('10.0.0.2'), NEW, 'the device that holds the address now');
    assert.is(valve.callCounts()['json_all'] ?? 0, 0, 'no listing of the portal');
    assert.is(await macOf('10.0.0.3'), B, 'not in the table: the portal list');
    assert.is(valve.callCounts()['json_all'], 1);
    assert.is(await macOf('10.0.0.9'), null, 'neither knows it');
    assert.equal(asked, ['10.0.0.2', '10.0.0.3', '10.0.0.9']);
  } finally {
    await valve.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
