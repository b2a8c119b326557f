// tier: daemon
/**
 * The venue lease's dead-man's switch under sluice's own gate (`main.portal 'sluice'`; docs/roaming.md, "The holder's
 * switch"), with the real daemon in a router namespace: its own gate (`inet sluice_portal`, whose set outlives the
 * daemon) and its `netdev sluice_gate` on the LAN device `lan`, a device in a namespace of its own sending a UDP
 * datagram every 10 ms through the router to an upstream namespace, which echoes it. No broker, no fleet: the
 * daemon's rounds renew on its own timer, so a live daemon with the fleet out of reach keeps its customer passing
 * over several timeouts, while one killed -9 has its venue device stopped by the kernel within the element's
 * timeout (its own gate's set still holding it), and restarted with no fleet to confirm the lease keeps it stopped; a
 * router in no venue keeps its paid device passing after a kill -9 and its restart.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BUNDLE, DaemonLab } from '../daemon/harness.ts';
import { deviceNetns, type DeviceNetns, type Probe } from '../helpers/device-netns.ts';
import { lacking, skipTest } from '../helpers/skip.ts';
import { until } from '../helpers/until.ts';
import { leaseTimeoutMs } from '../../src/upstream/index.ts';

const D = '02:00:00:00:5e:1d';
const ECHO_PORT = 7008;
const TTL_S = 5;
/** The kernel element's timeout for that TTL (4 s): what a venue device passes after its daemon's last round. */
const TIMEOUT_MS = leaseTimeoutMs(TTL_S * 1000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const lacks = lacking(['root', 'nft', 'ip']);
if (lacks) {
  skipTest(test, "portal 'sluice': the lease's switch stops a killed venue holder's device", lacks, {
    ciInstalls: true,
  });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'own-lease-switch-'));
  let net: DeviceNetns | undefined;
  const inR = (...args: string[]): string => net!.inRouter(...args);
  let lab: DaemonLab | undefined;
  let probe: Probe | undefined;

  test.before(() => {
    net = deviceNetns('ol', D, '10.83.0', '10.84.0');
    // The daemon runs in the router's namespace (its nft, conntrack and /proc/net/arp are the router's): `ip netns
    // exec` execs in place, so the harness's SIGKILL reaches node itself.
    const bundle = process.env.SLUICE_TEST_BUNDLE || BUNDLE;
    writeFileSync(
      join(dir, 'sluice'),
      `#!/bin/sh\nexec ip netns exec ${net.router} "${process.execPath}" "${bundle}" "$@"\n`,
      { mode: 0o755 },
    );
  });

  test.after.each(async () => {
    await probe?.stop();
    probe = undefined;
    await lab?.close();
    lab = undefined;
    inR('nft', 'flush', 'ruleset');
  });

  test.after(() => {
    net?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The router on its own gate (in venue `hall` with a lease TTL of TTL_S, or in none), the device paid and passing.
   */
  async function paidRouter(venue: boolean): Promise<DaemonLab> {
    lab = await DaemonLab.create({
      command: join(dir, 'sluice'),
      pollInterval: 1,
      mainExtra: [
        `\toption portal 'sluice'`,
        `\toption shape_device 'lan'`,
        `\toption ndsctl_socket '${join(dir, `gate-${randomBytes(2).toString('hex')}.sock`)}'`,
        ...(venue ? [`\toption venue 'hall'`, `\toption venue_lease_ttl '${TTL_S}'`] : []),
      ].join('\n'),
      extraConfig: `config http 'http'\n\toption listen '10.83.0.1:2123'\n`,
    });
    await lab.startDaemon();
    probe = net!.startProbe(ECHO_PORT);
    // The device in the router's neighbour table (its probes' replies need it), where the own gate finds its address.
    const r = lab;
    await until(() => inR('ip', 'neigh', 'show', 'dev', 'lan').includes(D), 20_000, 'the device in the neighbours');
    await r.call('grant', { mac: D, seconds: 3600 });
    await until(
      () => probe!.passing(),
      30_000,
      () => `the paid device passing\n${r.output}`,
    );
    return r;
  }

  const paidSetHolds = (): boolean => inR('nft', 'list', 'set', 'inet', 'sluice_portal', 'paid').includes(D);

  test("a venue device: the live daemon's own rounds keep it passing; killed -9, its kernel stops it", async () => {
    const r = await paidRouter(true);
    const stats = (await r.call('stats')) as { gate_table?: Record<string, unknown> };
    assert.is(stats.gate_table?.['leased'], 1, `the device is leased: ${JSON.stringify(stats.gate_table)}`);
    // No broker, no fleet: three whole timeouts later the device passes, its element renewed by the daemon's timer.
    const from = probe!.sent + 1;
    for (let i = 1; i <= 3; i++) {
      await sleep(TIMEOUT_MS);
      assert.ok(probe!.passing(), `passing after ${i} timeouts of its element, the daemon alive`);
    }
    // Never cut meanwhile: a cut is a second's datagrams (a hundred) lost in a row.
    const lost = probe!.longestLoss(from, probe!.lastDelivered);
    assert.ok(lost < 100, `never cut while the daemon lives: ${lost} datagrams lost in a row`);
    await r.stopDaemon('SIGKILL');
    const killedAt = performance.now();
    // Its element lapses within one timeout of the last round (the margin: the probe's ten datagrams and a busy
    // machine).
    await until(() => !probe!.passing(), TIMEOUT_MS + 3000, 'the kernel to stop the venue device');
    const stoppedAfter = probe!.sent;
    console.log(
      `# venue device stopped ${Math.round(performance.now() - killedAt)} ms after the kill (timeout ${TIMEOUT_MS} ms)`,
    );
    assert.ok(paidSetHolds(), "the own gate's set still holds it: the lease's element stopped it");
    await sleep(1000);
    assert.not.ok(probe!.passing(), 'it stays stopped');
    const echoed = (): string => `the last echoed ${probe!.lastDelivered}, seen stopped at ${stoppedAfter}`;
    assert.ok(probe!.lastDelivered <= stoppedAfter, `none sent since passed: ${echoed()}`);
    // Restarted with no fleet to ask: the lease may have moved meanwhile, so its element is not renewed until the fleet
    // says it is still this router's (docs/roaming.md, "Restarted").
    await r.startDaemon();
    const after = (await r.call('stats')) as { gate_table?: Record<string, unknown> };
    assert.is(after.gate_table?.['lease_unconfirmed'], 1, `unconfirmed: ${JSON.stringify(after.gate_table)}`);
    await sleep(TIMEOUT_MS);
    assert.not.ok(probe!.passing(), 'still stopped after the restart, the fleet unreachable');
    assert.ok(probe!.lastDelivered <= stoppedAfter, `none passed since it was stopped: ${echoed()}`);
    assert.ok(paidSetHolds(), "the restart kept the own gate's element of its live session");
  });

  test('a device of a router in no venue: killed -9, it keeps passing', async () => {
    const r = await paidRouter(false);
    await r.stopDaemon('SIGKILL');
    await sleep(TIMEOUT_MS + 3000);
    assert.ok(probe!.passing(), 'the paid device passes while the daemon is down');
    assert.ok(paidSetHolds());
    await r.startDaemon();
    await sleep(TIMEOUT_MS);
    assert.ok(probe!.passing(), 'and after the restart');
  });
}

test.run();
