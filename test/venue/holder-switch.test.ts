// tier: peers; needs initdb mosquitto
/**
 * The lease's dead-man's switch (docs/roaming.md, "The holder's switch") with real processes: two sluice daemons, a
 * real mosquitto, the fleet's lease service on a real PostgreSQL 15, and `ra`'s kernel side real: its nft (sluice's
 * `netdev sluice_gate`) in a network namespace whose LAN device `lan` carries the device's real packets, from a
 * namespace of its own to an upstream namespace and back, every 10 ms. `ra`'s gate is open while its portal says so
 * (the portal stand-in, whose state outlives the daemon as openNDS's rules do) and the device's packets pass `ra`'s
 * kernel; `rb`'s is its portal's. Killed -9 and not restarted past its lease, `ra` stops renewing, its kernel closes
 * the device before the lease expires at the fleet, and `rb` opens on the expiry only after that: never open at both.
 * A long session at a router that lives is never cut by its own switch (renewed over several TTLs).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonLab } from '../daemon/harness.ts';
import { deviceNetns, type DeviceNetns, type Probe } from '../helpers/device-netns.ts';
import { lacking, skipTest } from '../helpers/skip.ts';
import { netnsCommand } from '../helpers/netns-command.ts';
import {
  killedInRelease,
  lease,
  MiB,
  routerConfig,
  sleep,
  startVenue,
  ticksOk,
  usedBy,
  VENUE,
  type Venue,
} from './rig.ts';

const D = '02:00:00:00:5e:0d';
const BOUGHT = 8n * BigInt(MiB);
const TTL_S = 8;
const ECHO_PORT = 7007;

const lacks = lacking(['root', 'nft', 'ip']);
if (lacks) {
  skipTest(test, "the holder's switch: a holder killed past its lease never open at two routers", lacks, {
    ciInstalls: true,
  });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'holder-switch-'));
  let net: DeviceNetns | undefined;
  let venue: Venue | undefined;
  let probe: Probe | undefined;

  test.before(() => {
    net = deviceNetns('hs', D, '10.79.0', '10.80.0');
    netnsCommand(dir, net.router, 'nft');
  });

  test.after.each(async () => {
    await probe?.stop();
    probe = undefined;
    await venue?.close();
    venue = undefined;
    net?.inRouter('nft', 'flush', 'ruleset');
  });

  test.after(() => {
    net?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The venue with `ra` on the kernel in the router's namespace (kernel_quota on, its table on `lan` through the nft
   * wrapper; the daemon itself in the test's namespace, so the kernel's counters find no client of the portal on `lan`
   * and the meter reads the portal's counters, as the other venue tests do) and `rb` on the portal stand-in alone.
   */
  async function startRouters(): Promise<{ v: Venue; ra: DaemonLab; rb: DaemonLab }> {
    const v = await startVenue(['ra', 'rb'], [D], { ttlMs: TTL_S * 1000, elsewhere: ['ra'] });
    venue = v;
    const ra = await DaemonLab.create({
      routerId: 'ra',
      pollInterval: 0.3,
      portalSocket: true,
      mainExtra: [
        `\toption venue '${VENUE}'`,
        `\toption venue_lease_ttl '${TTL_S}'`,
        `\toption kernel_quota '1'`,
        `\toption shape_device 'lan'`,
        `\toption nft '${join(dir, 'nft')}'`,
      ].join('\n'),
      extraConfig: routerConfig(v.broker.url),
    });
    v.routers.set('ra', ra);
    ra.portal.addClient(D, net!.deviceIp);
    await ra.startDaemon();
    probe = net!.startProbe(ECHO_PORT);
    return { v, ra, rb: v.routers.get('rb')! };
  }

  const portalOpen = (lab: DaemonLab): boolean => lab.clientState(D) === 'Authenticated';

  /** A session of BOUGHT at `ra`, its lease registered and its first usage reported; what it passed there. */
  async function sold(v: Venue, ra: DaemonLab): Promise<bigint> {
    await ra.call('grant', { mac: D, bytes: Number(BOUGHT) });
    await ra.waitFor(() => portalOpen(ra) && probe!.passing(), 30_000, 'gate open at ra, packets passing');
    await ra.waitFor(async () => (await lease(v.db, D))?.['state'] === 'held', 30_000, 'the lease registered');
    const from = await ticksOk(ra);
    await ra.waitFor(async () => (await ticksOk(ra)) >= from + 2, 60_000, 'a meter tick after the start');
    ra.portal.addTraffic(D, MiB, 0);
    await ra.waitFor(async () => (await usedBy(ra, D)) === BigInt(MiB), 30_000, 'usage billed');
    await ra.waitFor(async () => (await lease(v.db, D))?.['used'] === String(MiB), 30_000, 'usage reported');
    return BigInt(MiB);
  }

  /**
   * The pairs of gate states (ra's, rb's) in the order seen, each once in a row; the last datagram the probe had sent
   * when rb was first seen open.
   */
  function watchGates(ra: DaemonLab, rb: DaemonLab) {
    const seen: string[] = [];
    let running = true;
    let sentWhenRbOpened: number | null = null;
    const loop = (async () => {
      while (running) {
        const a = portalOpen(ra) && probe!.passing();
        const b = portalOpen(rb);
        if (b) sentWhenRbOpened ??= probe!.sent;
        const pair = `${a ? 'open' : 'closed'}/${b ? 'open' : 'closed'}`;
        if (seen.at(-1) !== pair) seen.push(pair);
        await sleep(10);
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return { seen, sentWhenRbOpened };
      },
    };
  }

  test('killed -9 mid-release and not restarted past its lease: ra closes by itself before rb opens', async () => {
    const { v, ra, rb } = await startRouters();
    await sold(v, ra);
    const gates = watchGates(ra, rb);
    // The device busy at ra when rb claims: ra's release waits for it to leave, and ra is killed then.
    await killedInRelease(v, ra, rb, D);
    await rb.waitFor(
      async () => {
        if (portalOpen(rb)) return true;
        await rb.call('venue_claim', { mac: D });
        await sleep(450);
        return false;
      },
      120_000,
      'gate open at rb',
    );
    const { seen, sentWhenRbOpened } = await gates.stop();
    const lastPassedAtRa = probe!.lastDelivered;
    console.log(
      `# killed, not restarted: gates ${seen.join(' → ')}; ra's last packet passed ` +
        `${sentWhenRbOpened! - lastPassedAtRa} datagrams (10 ms apart) before rb opened`,
    );
    const [move] = await v.db.query<{ how: string }>('SELECT how FROM venue_moves WHERE mac = $1', [D]);
    assert.is(move?.how, 'expired', 'moved on the expiry');
    assert.ok(portalOpen(ra), "ra's portal, which outlives its daemon, still lets the device through");
    assert.not.ok(probe!.passing(), "ra's kernel stops it");
    assert.not.ok(seen.includes('open/open'), `never open at both: ${seen.join(' → ')}`);
    assert.ok(seen.indexOf('closed/closed') < seen.indexOf('closed/open'), `ra closed first: ${seen.join(' → ')}`);
    assert.ok(
      lastPassedAtRa <= sentWhenRbOpened!,
      `ra's last packet passed before rb opened: none sent after datagram ${sentWhenRbOpened} was echoed ` +
        `(the last echoed: ${lastPassedAtRa})`,
    );
  });

  test("a long session under a venue lease: its own router's renewals keep it open over several TTLs", async () => {
    const { v, ra } = await startRouters();
    await sold(v, ra);
    const replies = probe!.replies;
    const from = probe!.sent + 1;
    await sleep(4 * TTL_S * 1000);
    const to = probe!.sent;
    // Counted up to a datagram echoed after the window, so a cut at its end is counted whole.
    await ra.waitFor(() => probe!.lastDelivered > to, 30_000, 'a datagram sent after the window echoed');
    const lost = probe!.longestLoss(from, probe!.lastDelivered);
    const stats = (await ra.call('stats')) as { gate_table?: Record<string, unknown> };
    console.log(
      `# ${probe!.replies - replies} replies to datagrams ${from}..${to} (${4 * TTL_S} s), at most ${lost} lost in a ` +
        `row; gate_table ${JSON.stringify(stats.gate_table)}`,
    );
    // A cut is a second's datagrams (a hundred) lost in a row while the router lives.
    assert.ok(lost < 100, `never cut by its own router: ${lost} datagrams lost in a row`);
    assert.is(stats.gate_table?.['leased'], 1, 'the device is leased');
    assert.ok(portalOpen(ra) && probe!.passing());
  });
}

test.run();
