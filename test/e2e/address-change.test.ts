// tier: lab
/**
 * A paying data client's bytes when the router changes under it, on the openNDS lab with sluice's kernel counters and
 * quota (main.kernel_quota 1, the default), the uplink shaped to 8 Mbit/s (≈ 1 MB/s):
 *   1 the client changes its IPv4 address under the same MAC mid-session (a new lease, a static change) and asks
 *     from the new one for 45 s: whatever its link passes is billed (the counters and the quota are keyed by MAC at
 *     the LAN device's netdev hooks) and nothing passes beyond the allotment; a session still live has not had it
 *     (both portals, openNDS 9.10 and 10.3.1, keep the new address behind their splash: docs/operations.md);
 *   2 an outside `nft flush ruleset` mid-download (a firewall reload, an admin): sluice's tables are made again at
 *     once (portal/table-watch.ts), each client's count and quota in them; what passed while they were gone is the
 *     bound measured (unbilled, and past the allotment), stated in docs/operations.md. The flush takes the portal's
 *     own rules too (openNDS 9.10's iptables-nft tables), so the portal is restarted after it.
 * The measure is each client's own link (its veth's IP bytes, every address it had): sluice bills by MAC, the
 * router's own answers included.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { LAB_SH, MiB, ROUTER_LAN_IP, fmt, run, sleep, waitFor } from './lab.ts';
import { figure, labRun, prerequisites } from './scenario.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
const lab = labRun('address-change', pre);
const { L, S, scenario } = lab;
const ALLOTMENT = 2 * MiB;
/**
 * What may pass beyond the allotment or unbilled (docs/operations.md "Kernel quota": every cut within 6 KiB of the
 * allotment; billed ≤ 4 KiB without passing unless refills fell short): the address change must not widen it.
 */
const CUT_BOUND = 64 * 1024;
const POLL_S = 1;
/** The uplink's shaping (labRun: tbf 8mbit), in bytes a second. */
const RATE_BPS = 1_000_000;

scenario('sluice daemon starts against the lab (kernel quota on)', pre.daemon, async () => {
  lab.sluice = await Sluice.start(L(), { pollInterval: POLL_S, checkpointInterval: 5 });
  assert.ok(S().kernelQuota, 'this file measures the kernel quota');
});

const inClient = (ns: string, ...args: string[]) => run('ip', ['netns', 'exec', ns, ...args]);

scenario('1 an address change under the same MAC mid-session is counted and braked', pre.daemon, async () => {
  const c = L().client(1);
  await L().visitPortal(c);
  const before = await L().linkIpBytes(c);
  await S().call('grant', { mac: c.mac, bytes: ALLOTMENT });
  await waitFor(
    'the gate to open',
    10_000,
    async () => ((await L().portalState(c.mac)) === 'Authenticated' ? 1 : undefined),
    250,
  );
  // Half a megabyte from the address it paid with…
  const first = L().download(c, '/20MiB', join(L().dir, 'ip1.bin'), 30);
  await waitFor(
    'half a MiB on the first address',
    30_000,
    async () => (first.received() >= MiB / 2 ? 1 : undefined),
    100,
  );
  first.kill();
  await first.done;
  // …then another address, the same MAC: the old one goes, the new one takes the default route.
  const moved = `${c.ip.split('.').slice(0, 3).join('.')}.${200 + c.index}`;
  for (const args of [
    ['ip', 'addr', 'del', `${c.ip}/24`, 'dev', 'eth0'],
    ['ip', 'addr', 'add', `${moved}/24`, 'dev', 'eth0'],
    ['ip', 'route', 'replace', 'default', 'via', ROUTER_LAN_IP],
  ]) {
    const r = await inClient(c.ns, ...args);
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  try {
    // The portal may keep the new address behind its splash until it lists the client again (its checkinterval, 15
    // s): the customer's device retries, as a browser does, until the upstream answers or 45 s went by.
    let second = L().download(c, '/20MiB', join(L().dir, 'ip2.bin'), 40);
    const retryUntil = Date.now() + 45_000;
    await waitFor(
      'the download or the session to end',
      120_000,
      async () => {
        if ((await S().session(c.mac))?.state !== 'ACTIVE') return 1;
        const r = await Promise.race([second.done, sleep(0)]);
        if (!r) return undefined;
        if (r.bytes > 4096 || Date.now() > retryUntil) return 1;
        await sleep(1000);
        second = L().download(c, '/20MiB', join(L().dir, 'ip2.bin'), 40);
        return undefined;
      },
      250,
    );
    await sleep(1500);
    second.kill();
    const r2 = await second.done;
    await S().meterCaughtUp();
    const passed = (await L().linkIpBytes(c)) - before;
    const s = (await S().session(c.mac))!;
    figure(
      `1 ${L().portal} address ${c.ip} → ${moved}: ${fmt(r2.bytes)} on the new one (curl exit ${r2.exit}); ` +
        `state ${s.state}, used ${fmt(s.used)} of ${fmt(s.allotment)}; the link passed ${fmt(passed)}: ` +
        `${fmt(passed - ALLOTMENT)} past the allotment, ${fmt(passed - s.used)} unbilled`,
    );
    assert.ok(passed - ALLOTMENT <= CUT_BOUND, `past the allotment: ${passed - ALLOTMENT}`);
    assert.ok(Math.abs(passed - s.used) <= CUT_BOUND, `unbilled: ${passed - s.used}`);
    // Still live only while it has not had its allotment (a portal that does not let the new address through).
    if (s.state === 'ACTIVE') assert.ok(passed < ALLOTMENT - CUT_BOUND, `live after ${passed} passed`);
    else assert.is(s.state, 'EXPIRED');
  } finally {
    await inClient(c.ns, 'ip', 'addr', 'del', `${moved}/24`, 'dev', 'eth0');
    await inClient(c.ns, 'ip', 'addr', 'add', `${c.ip}/24`, 'dev', 'eth0');
    await inClient(c.ns, 'ip', 'route', 'replace', 'default', 'via', ROUTER_LAN_IP);
  }
});

const rt = (...args: string[]) => run(LAB_SH, ['rt', L().dir, ...args]);

scenario(
  '2 an outside `nft flush ruleset` mid-download: the bound unbilled and past the allotment',
  pre.daemon,
  async () => {
    const c = L().client(2);
    await L().visitPortal(c);
    const before = await L().linkIpBytes(c);
    await S().call('grant', { mac: c.mac, bytes: ALLOTMENT });
    await waitFor(
      'the gate to open',
      10_000,
      async () => ((await L().portalState(c.mac)) === 'Authenticated' ? 1 : undefined),
      250,
    );
    const dl = L().download(c, '/20MiB', join(L().dir, 'flush.bin'), 40);
    await waitFor('half a MiB', 30_000, async () => (dl.received() >= MiB / 2 ? 1 : undefined), 100);
    const atFlush = (await L().linkIpBytes(c)) - before;
    const flushed = Date.now();
    const f = await rt('nft', 'flush', 'ruleset');
    assert.is(f.code, 0, f.stderr);
    const back = await waitFor(
      "sluice's tables made again",
      30_000,
      async () => {
        const [count, quota] = await Promise.all([
          rt('nft', 'list', 'table', 'netdev', 'sluice_count'),
          rt('nft', 'list', 'table', 'netdev', 'sluice_quota'),
        ]);
        return count.code === 0 && quota.code === 0 && quota.stdout.includes('quota')
          ? Date.now() - flushed
          : undefined;
      },
      20,
    );
    const ended = await S().waitSession(c.mac, 'the session to end', 60_000, (s) => s.state !== 'ACTIVE');
    // The portal's rules went with the flush: the link is measured when the session ended, then the portal restarted.
    const passed = (await L().linkIpBytes(c)) - before;
    dl.kill();
    await dl.done;
    const s = (await S().session(c.mac)) ?? ended;
    const stats = await S().call('stats', {});
    // What the link can pass while sluice's tables are away: until the first reading after they are back (one poll),
    // at the uplink's 8 Mbit/s.
    const bound = ((POLL_S * 1000 + back) / 1000) * RATE_BPS + CUT_BOUND;
    figure(
      `2 flush at ${fmt(atFlush)} passed; sluice's tables back ${back} ms later; state ${s.state}, used ` +
        `${fmt(s.used)} of ${fmt(s.allotment)}; the link passed ${fmt(passed)} by the end: ` +
        `${fmt(passed - ALLOTMENT)} past the allotment, ${fmt(passed - s.used)} unbilled; ` +
        `stats.kernel_quota ${JSON.stringify(stats['kernel_quota'])}`,
    );
    await L()
      .stopOpennds()
      .catch(() => undefined);
    await L().startOpennds();
    assert.is(s.state, 'EXPIRED');
    assert.ok(passed - ALLOTMENT <= bound, `past the allotment: ${passed - ALLOTMENT} (bound ${bound})`);
    assert.ok(passed - s.used <= bound, `unbilled: ${passed - s.used} (bound ${bound})`);
  },
);

test.run();
