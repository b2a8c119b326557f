// tier: lab
/**
 * Speed tiers on the real openNDS lab: two clients bought plans of 2 and 8 Mbit/s download; each
 * downloads at once for 12 s, and the goodput curl measures at the client (bytes of the body over the transfer's
 * time) must be the plan's rate ± 5 %. Upload is policed (docs/configuration.md "Speed tiers"): its goodput, as the
 * upstream received it, is shown and must stay within policing's looser fit (under the rate + 15 %). A rate changed by
 * ubus `change` is journaled: after kill -9 and a restart the client is limited to it again (scenario 4). On the
 * package's example tier (8 Mbit/s down, 2 Mbit/s up) on a data plan, what the router's own policer drops is never
 * billed (scenario 5), and a 2 MiB session gives the client's application ≥ 95 % of it (scenario 6). A session ended
 * mid-download on a 1 Mbit/s tier: its class sends what it still queued (billed already) before it is deleted
 * (scenario 7).
 *
 * The lab's own uplink shaper (lab.sh --rate, 8 Mbit/s by default) is off here: it would cap the two clients'
 * 10 Mbit/s together below their rates. Nothing else shapes the lab, so what limits each client is sluice's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { Lab, MiB, downloadGoodput, fmt, pct, run, sleep, waitFor, type Client } from './lab.ts';
import { dumpLogs, figure, prerequisites, scenario as plainScenario } from './scenario.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
let lab: Lab | null = null;
let sluice: Sluice | null = null;
const L = (): Lab => lab!;
const S = (): Sluice => sluice!;
const PLANS = [
  `config pricing 'slow'`,
  `\toption metric 'seconds'`,
  `\toption step_size '60'`,
  `\toption price_per_step '1000'`,
  `\toption max_steps '1440'`,
  `\toption rate_down '2mbit'`,
  `\toption rate_up '2mbit'`,
  ``,
  `config pricing 'fast'`,
  `\toption metric 'seconds'`,
  `\toption step_size '60'`,
  `\toption price_per_step '4000'`,
  `\toption max_steps '1440'`,
  `\toption rate_down '8mbit'`,
  `\toption rate_up '8mbit'`,
  ``,
  `config pricing 'trickle'`,
  `\toption metric 'bytes'`,
  `\toption step_size '1048576'`,
  `\toption price_per_step '1000'`,
  `\toption max_steps '1000'`,
  `\toption rate_down '1mbit'`,
  ``,
  // The package's example tier (files/etc/config/sluice), on a data plan.
  `config pricing 'capped'`,
  `\toption metric 'bytes'`,
  `\toption step_size '1048576'`,
  `\toption price_per_step '1000'`,
  `\toption max_steps '1000'`,
  `\toption rate_down '8mbit'`,
  `\toption rate_up '2mbit'`,
  ``,
].join('\n');
const SECONDS = 12;
let failed = false;

if (pre.daemon === null) {
  test.before(async () => {
    lab = await Lab.up({ rate: null });
    // As on OpenWrt, br_netfilter is off in the lab's router (lab.sh): a bridge port's packets meet br-lan's netdev
    // ingress before any IP hook, which is where the policer sits relative to the counters (scenario 5).
    sluice = await Sluice.start(lab, { extraConfig: PLANS });
    figure(`lab ${lab.id}: uplink unshaped, portal ${lab.portal}`);
  });
  test.after(async () => {
    if (failed) dumpLogs(lab, sluice ? () => sluice!.logTail(80) : null);
    await sluice?.stop();
    await lab?.down();
  });
}

/**
 * curl uploads a body sized for ~10 s at `bps`: its size over the time until the upstream answered that it has it all.
 */
async function uploadGoodput(c: Client, bps: number): Promise<number> {
  const bytes = Math.round((bps / 8) * 10);
  const r = await run(
    'sh',
    [
      '-c',
      `head -c ${bytes} /dev/zero | ip netns exec ${c.ns} curl -s -o /dev/null --max-time ${SECONDS * 3} ` +
        `-w '%{size_upload} %{time_total} %{time_pretransfer}' --data-binary @- http://10.77.1.2/upload`,
    ],
    SECONDS * 4000,
  );
  const [size, total, start] = r.stdout.trim().split(' ').map(Number) as [number, number, number];
  return (size * 8) / (total - start);
}

async function grant(c: Client, plan: string): Promise<void> {
  await L().visitPortal(c);
  await S().call('grant', { mac: c.mac, seconds: 600, plan });
  // 30 s is a hang guard: under CPU load openNDS's auth (a dozen iptables calls) and ndsctl's answers stretch to
  // seconds.
  await waitFor(
    `the gate of ${c.mac} to open`,
    30_000,
    async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
    250,
  );
}

const scenario = (name: string, skip: string | null, fn: () => Promise<void>): void =>
  plainScenario(name, skip, async () => {
    try {
      await fn();
    } catch (err) {
      failed = true;
      throw err;
    }
  });
const within = (bps: number, rate: number, band: number): boolean => Math.abs(bps - rate) <= rate * band;
const mbit = (bps: number): string => `${(bps / 1e6).toFixed(3)} Mbit/s`;

scenario(
  '1 two clients on 2 and 8 Mbit/s plans download at once: each gets its rate ± 5 % (goodput)',
  pre.daemon,
  async () => {
    const slow = L().client(1);
    const fast = L().client(2);
    await grant(slow, 'slow');
    await grant(fast, 'fast');
    const [s, f] = await Promise.all([downloadGoodput(slow, SECONDS), downloadGoodput(fast, SECONDS)]);
    figure(`1 download goodput over ${SECONDS} s: 2 Mbit/s plan ${mbit(s)}, 8 Mbit/s plan ${mbit(f)}`);
    assert.ok(within(s, 2e6, 0.05), `2 Mbit/s plan: ${mbit(s)}`);
    assert.ok(within(f, 8e6, 0.05), `8 Mbit/s plan: ${mbit(f)}`);
  },
);

scenario("2 upload is policed at the plan's rate (shown; under the rate + 15 %)", pre.daemon, async () => {
  const [s, f] = await Promise.all([uploadGoodput(L().client(1), 2e6), uploadGoodput(L().client(2), 8e6)]);
  figure(`2 upload goodput: 2 Mbit/s plan ${mbit(s)}, 8 Mbit/s plan ${mbit(f)}`);
  assert.ok(s < 2e6 * 1.15 && s > 2e6 * 0.5, `2 Mbit/s plan: ${mbit(s)}`);
  assert.ok(f < 8e6 * 1.15 && f > 8e6 * 0.5, `8 Mbit/s plan: ${mbit(f)}`);
});

scenario("3 the gate closes: the client's class and limit go with it", pre.daemon, async () => {
  await S().call('terminate', { mac: L().client(1).mac });
  const tc = await waitFor('the class to go', 30_000, async () => {
    const r = await run('bash', [
      new URL('./lab.sh', import.meta.url).pathname,
      'rt',
      L().dir,
      'nft',
      'list',
      'map',
      'inet',
      'sluice_rate',
      'down',
    ]);
    return r.stdout.includes('10.77.0.101') ? undefined : r.stdout;
  });
  assert.ok(tc.includes('10.77.0.102'), 'the other client keeps its class');
});

scenario(
  '4 a changed rate survives kill -9: after the restart (and a new tier sold) the client still gets it ± 5 %',
  pre.daemon,
  async () => {
    const fast = L().client(2);
    const changed = await S().call('change', { mac: fast.mac, rate_down: '4mbit' });
    assert.is((changed.session as Record<string, unknown>).rate_down, 4_000_000);
    await S().kill9();
    await S().startDaemon();
    // A new client with a tier: its auth is the shaper's first use in this run. Without the journaled rates and the
    // start-up rebuild, that use replaced the qdisc and the table with this client alone, and the 4 Mbit/s client ran
    // free.
    await grant(L().client(3), 'slow');
    const view = await S().session(fast.mac);
    assert.is(view?.raw['rate_down'], 4_000_000, "the session's view after the restart");
    const f = await downloadGoodput(fast, SECONDS);
    figure(`4 after kill -9 and restart: the client changed to 4 Mbit/s downloads at ${mbit(f)}`);
    assert.ok(within(f, 4e6, 0.05), `changed to 4 Mbit/s: ${mbit(f)}`);
  },
);

/**
 * The session's `used` once the meter has billed everything that passed: two equal readings 3 s apart (several polls:
 * a tick may be late on a loaded machine), the client idle meanwhile.
 */
async function settledUsed(mac: string): Promise<number> {
  let last = -1;
  return waitFor(
    `the bill of ${mac} to settle`,
    60_000,
    async () => {
      const used = (await S().session(mac))?.used ?? -1;
      const settled = used === last;
      last = used;
      return settled ? used : undefined;
    },
    3_000,
  );
}

scenario(
  '5 a data session on a 2 Mbit/s upload tier: what the policer drops is neither billed nor taken off the allotment',
  pre.daemon,
  async () => {
    const c = L().client(1);
    await L().visitPortal(c);
    await S().call('grant', { mac: c.mac, bytes: 64 * MiB, plan: 'capped' });
    await waitFor(
      `the gate of ${c.mac} to open`,
      30_000,
      async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
      250,
    );
    const used0 = await settledUsed(c.mac);
    const sent0 = await L().clientIpBytes(c, 'to_upstream');
    const down0 = await L().clientIpBytes(c, 'from_upstream');
    const arrived0 = await L().upstreamIpFrom(c);
    const goodput = await uploadGoodput(c, 2e6);
    const billed = (await settledUsed(c.mac)) - used0;
    const sent = (await L().clientIpBytes(c, 'to_upstream')) - sent0;
    const down = (await L().clientIpBytes(c, 'from_upstream')) - down0;
    const arrived = (await L().upstreamIpFrom(c)) - arrived0;
    figure(
      `5 upload at ${mbit(goodput)}: the client sent ${fmt(sent)}, the upstream got ${fmt(arrived)} (the policer ` +
        `dropped ${fmt(sent - arrived)}), the client got ${fmt(down)} back; billed ${fmt(billed)}`,
    );
    assert.ok(sent - arrived >= 64 * 1024, 'the policer dropped packets (else this shows nothing)');
    // The counters see what passed the policer: what reached the upstream and what came back (a few KiB of slack
    // for the router's own answers and a reading's edge).
    assert.ok(billed <= arrived + down + 16 * 1024, `billed ${billed} ≤ passed ${arrived + down}`);
    assert.ok(billed >= arrived + down - 16 * 1024, `billed ${billed} ≥ passed ${arrived + down}`);
  },
);

scenario(
  '6 a 2 MiB data session behind the 8 Mbit/s download tier: the application gets ≥ 95 % of it',
  pre.daemon,
  async () => {
    const c = L().client(4);
    const allotment = 2 * MiB;
    await L().visitPortal(c);
    const down0 = await L().clientIpBytes(c, 'from_upstream');
    const up0 = await L().clientIpBytes(c, 'to_upstream');
    await S().call('grant', { mac: c.mac, bytes: allotment, plan: 'capped' });
    await waitFor(
      `the gate of ${c.mac} to open`,
      30_000,
      async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
      250,
    );
    const dl = L().download(c, '/20MiB', join(L().dir, 'capped.bin'), 90);
    const ended = await S().waitSession(c.mac, 'the data session to end', 90_000, (v) => v.state !== 'ACTIVE');
    // curl gives up on its own (the upstream drops a stalled connection after 8 s): what it wrote is all it got.
    await Promise.race([dl.done, sleep(15_000)]);
    dl.kill();
    const app = dl.received();
    const s = (await S().session(c.mac)) ?? ended;
    const ipDown = (await L().clientIpBytes(c, 'from_upstream')) - down0;
    const ipUp = (await L().clientIpBytes(c, 'to_upstream')) - up0;
    figure(
      `6 ${s.state}: billed ${fmt(s.used)}; reached the client ${fmt(ipDown)}, its upload ${fmt(ipUp)}; ` +
        `application ${fmt(app)} = ${pct(app / allotment)} of the allotment`,
    );
    assert.is(s.state, 'EXPIRED', 'ended by its allotment');
    assert.is(s.used, allotment, 'billed the allotment');
    assert.ok(app >= 0.95 * allotment, `the application got ${pct(app / allotment)} of the allotment`);
    // Billed and never arrived (dropped by the router after counting, or in flight at the cut): at most a few
    // segments.
    assert.ok(allotment - (ipDown + ipUp) <= 32 * 1024, `billed but not arrived: ${allotment - ipDown - ipUp}`);
  },
);

const brLanDrops = async (): Promise<string> =>
  (await run('ip', ['netns', 'exec', L().rtNs, 'tc', '-s', 'qdisc', 'show', 'dev', 'br-lan'])).stdout.replace(
    /\n/g,
    ' | ',
  );

scenario(
  '7 a session ended mid-download on a 1 Mbit/s tier: what its class still queued is delivered, not thrown away',
  pre.daemon,
  async () => {
    // Client 4's 2 MiB session of scenario 6 has ended: a new purchase.
    const c = L().client(4);
    await L().visitPortal(c);
    await S().call('grant', { mac: c.mac, bytes: 64 * MiB, plan: 'trickle' });
    await waitFor(
      `the gate of ${c.mac} to open`,
      30_000,
      async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
      250,
    );
    const down0 = await L().clientIpBytes(c, 'from_upstream');
    const up0 = await L().clientIpBytes(c, 'to_upstream');
    const used0 = (await S().session(c.mac))?.used ?? 0;
    const before = await brLanDrops();
    const dl = L().download(c, '/20MiB', join(L().dir, 'trickle.bin'), 60);
    await sleep(6_000);
    await S().call('terminate', { mac: c.mac });
    await Promise.race([dl.done, sleep(20_000)]);
    dl.kill();
    // What the class still queued when the gate closed leaves at its rate (≈ 1 s a 128 KiB here).
    await waitFor(
      'the LAN qdisc to be empty',
      30_000,
      async () => (/backlog 0b 0p/.test(await brLanDrops()) ? true : undefined),
      500,
    );
    const s = await S().session(c.mac);
    const billed = (s?.used ?? 0) - used0;
    const ipDown = (await L().clientIpBytes(c, 'from_upstream')) - down0;
    const ipUp = (await L().clientIpBytes(c, 'to_upstream')) - up0;
    figure(
      `7 billed ${fmt(billed)}; reached the client ${fmt(ipDown)}, its upload ${fmt(ipUp)}; ` +
        `not delivered ${fmt(billed - ipDown - ipUp)}; br-lan before: ${before}; after: ${await brLanDrops()}`,
    );
    // Deleting the class at the close threw its queue away: 95 KiB billed and never delivered here.
    assert.ok(billed - ipDown - ipUp <= 16 * 1024, `billed and not delivered: ${billed - ipDown - ipUp}`);
  },
);

if (pre.daemon !== null) scenario('e2e rates', pre.daemon, async () => {});
test.run();
