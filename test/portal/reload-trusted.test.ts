// tier: fast
/**
 * A config reload reads the portal's trusted MACs again for the IPv6 gate (composition/reloader.ts → Valve
 * .rereadTrusted): an operator who changed openNDS's `trustedmac` and restarted it reloads sluice, and the device's
 * IPv6 follows then, without a restart of sluice. Against the simulated openNDS on a real control socket; the reload
 * is the daemon's own reloader over a real config file, the parts it reconfigures besides the valve stand still.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configReloader } from '../../src/composition/reloader.ts';
import { loadConfigPartial } from '../../src/config/index.ts';
import { silentLogger } from '../../src/log.ts';
import { Valve } from '../../src/portal/index.ts';
import { PortalModel } from '../../src/sim/index.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';
import type { Parts } from '../../src/composition/parts.ts';
import { ipv6Recorder } from './raw-ndsctl.ts';

const A = '02:00:00:00:0c:01';
const T1 = '02:00:00:00:0c:0a';
const T2 = '02:00:00:00:0c:0b';
const dir = mkdtempSync(join(tmpdir(), 'sluice-reload-trusted-'));
const cleanups: Array<() => Promise<void> | void> = [];

test.after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

test("a reload reads the portal's trusted MACs again: the IPv6 gate follows a trustedmac change", async () => {
  const model = new PortalModel({ flavour: 'opennds', trustedMacs: [T1] });
  const path = join(dir, 'ndsctl.sock');
  const server = await listenNdsctlSocket(path, portalRequestHandler(model));
  cleanups.push(() => server.close());
  const ipv6 = ipv6Recorder();
  const told = ipv6.told;
  const valve = new Valve({ command: ['/nonexistent/ndsctl'], socketPath: () => path, flavour: 'opennds', ipv6 });
  cleanups.push(() => valve.destroy());
  model.addClient(A, '10.0.0.2');
  await valve.snapshot();
  assert.equal(told, [[T1]], 'at start');

  const configPath = join(dir, 'sluice.conf');
  writeFileSync(configPath, `config sluice 'main'\n\toption state_dir '${join(dir, 'state')}'\n`);
  const started = await loadConfigPartial(configPath);
  const still = async (): Promise<undefined> => undefined;
  const parts = {
    valve,
    upstream: { reload: async () => [] },
    sessions: { configure: () => {} },
    payments: { switchTo: still, reconfigure: () => {}, recheck: still, built: () => ({}), listenersAt: () => ({}) },
    pricing: { setPlans: () => {} },
  } as unknown as Parts;
  const reloader = configReloader({ configPath }, silentLogger, started, parts, {
    follow: still,
    moveListen: still,
  });
  // openNDS restarted with another trustedmac list; sluice's own config unchanged.
  model.config.trustedMacs.splice(0, 1, T2);
  await reloader.reload();
  assert.equal(told, [[T1], [T2]], 'the reload read the new list');
});

test('with no IPv6 gate a reload asks the portal nothing', async () => {
  const model = new PortalModel({ flavour: 'opennds' });
  const path = join(dir, 'ndsctl-2.sock');
  const requests: string[] = [];
  const handle = portalRequestHandler(model);
  const server = await listenNdsctlSocket(path, (line) => (requests.push(line), handle(line)));
  cleanups.push(() => server.close());
  const valve = new Valve({ command: ['/nonexistent/ndsctl'], socketPath: () => path, flavour: 'opennds' });
  cleanups.push(() => valve.destroy());
  assert.is(await valve.rereadTrusted(), false);
  assert.equal(requests, []);
});

test.run();
