/**
 * A Meter over the real SessionManager (in memory) reading a portal model through its ndsctl socket, on a clock the
 * test moves. Billing is checked, not timing: no bill-ahead (it depends on the real fetch time), and cuts planned
 * between ticks never fire.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInlineRunner, Meter, sessionManagerPort, type MeterOptions } from '../../src/meter/index.ts';
import { SessionManager } from '../../src/sessions/index.ts';
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { PortalModel } from '../../src/sim/portal.ts';
import { listenNdsctlSocket, portalRequestHandler } from '../../src/sim/socket.ts';

/** The rig, its files under a temporary directory named after `name`; `close` stops it and removes them. */
export async function socketMeter(name: string, kernelQuota?: MeterOptions['kernelQuota']) {
  const dir = mkdtempSync(join(tmpdir(), `sluice-${name}-`));
  const now = { t: 1_795_221_800_000 };
  const portal = new PortalModel({ flavour: 'opennds' }, { clock: { now: () => now.t } });
  const server = await listenNdsctlSocket(join(dir, 'ndsctl.sock'), portalRequestHandler(portal));
  const sessions = await SessionManager.open({ store: new MemoryStore(), clock: { now: () => now.t } });
  const port = sessionManagerPort(sessions);
  const meter = new Meter({
    source: { kind: 'socket', path: server.path },
    pollIntervalMs: 10_000,
    sessions: port,
    runner: createInlineRunner(),
    clock: { now: () => now.t },
    newSessionGraceMs: 0,
    ...(kernelQuota && { kernelQuota }),
    closeLatencyMs: () => 0,
    timers: { setTimeout: () => undefined, clearTimeout: () => {} },
  });
  const close = async (): Promise<void> => {
    await meter.close();
    await sessions.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { now, portal, sessions, port, meter, close };
}
