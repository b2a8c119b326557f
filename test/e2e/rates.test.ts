// tier: lab
/**
 * Speed tiers on the real openNDS lab (issue 27 #1): two clients bought plans of 2 and 8 Mbit/s download; each
 * downloads at once for 12 s, and the goodput curl measures at the client (bytes of the body over the transfer's
 * time) must be the plan's rate ± 5 %. Upload is policed (docs/configuration.md "Speed tiers"): its goodput, as the
 * upstream received it, is shown and must stay within policing's looser fit (under the rate + 15 %). A rate changed by
 * ubus `change` is journaled: after kill -9 and a restart the client is limited to it again (scenario 4).
 *
 * The lab's own uplink shaper (lab.sh --rate, 8 Mbit/s by default) is off here: it would cap the two clients'
 * 10 Mbit/s together below their rates. Nothing else shapes the lab, so what limits each client is sluice's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Lab, downloadGoodput, run, waitFor, type Client } from './lab.ts';
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
].join('\n');
const SECONDS = 12;
let failed = false;

if (pre.daemon === null) {
  test.before(async () => {
    lab = await Lab.up({ rate: null });
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

if (pre.daemon !== null) scenario('e2e rates', pre.daemon, async () => {});
test.run();
