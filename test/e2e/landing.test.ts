// tier: lab
/**
 * End to end, the customer's side of the kernel quota: what the client's application gets of what
 * it was billed, and how soon a client granted before the portal lists it gets through. One lab (uplink shaped to
 * SLUICE_E2E_RATE, default 8mbit; `none` for an unshaped uplink), the built sluice with main.kernel_quota as the
 * package ships it (SLUICE_E2E_KERNEL_QUOTA=0 for the polled cut).
 *
 *   1  landing: SLUICE_E2E_RUNS data sessions of 2 MiB, each a 20 MiB download (SLUICE_E2E_FILE) → billed bytes,
 *      the client's IP counters, the HTTP body bytes curl received; figures only, and what cannot flake asserted (the
 *      application got no more than passed, and the session ended by its allotment)
 *   2  first 200: SLUICE_E2E_RUNS grants for a client the portal does not list yet, then the client requests a page
 *      every 100 ms → time from its first request to its first 200 (figures; asserted: it gets through)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Lab, MiB, fmt, pct, run as exec, sleep, waitFor } from './lab.ts';
import { Prober, figure, LabRun, prerequisites, dumpLogs } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';

const RUNS = Number(process.env['SLUICE_E2E_RUNS'] ?? 3);
const RATE = process.env['SLUICE_E2E_RATE'] ?? '8mbit';
/**
 * The data sessions' allotment (MiB): a longer one reaches the steady state of TCP behind the shaper (periodic losses).
 */
const ALLOT = Number(process.env['SLUICE_E2E_ALLOT_MIB'] ?? 2) * MiB;
/** What each data session downloads (32 MiB with SLUICE_E2E_FILE=/bytes/33554432); the session ends first. */
const FILE = process.env['SLUICE_E2E_FILE'] ?? '/20MiB';
/** Random loss on the uplink before the gate (netem under the tbf), e.g. `1%`: the holes the quota's cut can strand. */
const LOSS = process.env['SLUICE_E2E_LOSS'] ?? '';
/**
 * The uplink shaper's queue as tbf latency (lab.sh: 400ms); a shorter queue drops sooner: tail drops before the gate.
 */
const TBF_LATENCY = process.env['SLUICE_E2E_TBF_LATENCY'] ?? '';
const pre = prerequisites();
const run = new LabRun();
const { L, S, scenario } = run;
const tmp = (name: string): string => join(L().dir, name);
const run_ = async (args: string[]): Promise<string> => {
  const r = await exec('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};
const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// Measurements for docs/performance.md (~2 min of lab time), not part of `npm test`'s budget: run them on purpose.
const skip =
  pre.lab ??
  (process.env['SLUICE_E2E_LANDING'] === '1'
    ? null
    : 'measurements, run on purpose: SLUICE_E2E_LANDING=1 node test/run.mjs e2e/landing (the gate retry it times ' +
      'is also test/gate/gatekeeper.test.ts)');
if (skip) {
  // A missing lab fails in CI; not opting in to these measurements (SLUICE_E2E_LANDING) does not.
  skipTest(test, 'e2e landing scenarios', skip, { ciInstalls: pre.lab !== null });
} else {
  test.before(async () => {
    const lab = (run.lab = await Lab.up({ rate: RATE === 'none' ? null : RATE }));
    if (TBF_LATENCY !== '' && RATE !== 'none') {
      await run_([
        'netns',
        'exec',
        lab.upNs,
        'tc',
        'qdisc',
        'replace',
        'dev',
        'eth0',
        'root',
        'tbf',
        'rate',
        RATE,
        'burst',
        '32kbit',
        'latency',
        TBF_LATENCY,
      ]);
    }
    if (LOSS !== '') {
      // No netem here (sch_netem is not loaded). A drop in the upstream's own output would not be a loss (its TCP
      // holds the segment back and sends it later, in order): the router drops that share of what arrives on its WAN
      // side at random, before anything counts it, as a lossy uplink would.
      const permille = Math.round(Number(LOSS.replace('%', '')) * 10);
      const r = await exec('ip', [
        'netns',
        'exec',
        lab.rtNs,
        'nft',
        'add table ip labloss; add chain ip labloss in { type filter hook prerouting priority -400; policy ' +
          `accept; }; add rule ip labloss in iifname "wan" meta l4proto tcp numgen random mod 1000 < ${permille} ` +
          'drop',
      ]);
      if (r.code !== 0) throw new Error(`loss rule: ${r.stderr}`);
    }
    figure(
      `lab ${lab.id}: uplink ${RATE === 'none' ? 'unshaped' : `tbf ${RATE}`}${LOSS ? `, loss ${LOSS}` : ''}, ` +
        `portal ${lab.portal}: ` +
        (await run_(['netns', 'exec', lab.upNs, 'tc', 'qdisc', 'show', 'dev', 'eth0'])).replace(/\n/g, ' | '),
    );
  });
  test.after(async () => {
    if (run.failed) dumpLogs(run.lab, run.sluice ? () => run.S().logTail(120) : null);
    await run.sluice?.stop();
    await run.lab?.down();
  });
}

scenario('sluice daemon starts against the lab', skip ?? pre.daemon, async () => {
  run.sluice = await Sluice.start(L(), { pollInterval: 1, checkpointInterval: 5 });
  figure(`sluice poll 1 s via ${S().via}, kernel quota ${S().kernelQuota ? 'on' : 'off'}`);
});

/** IP bytes per full-size segment of payload (MSS 1448 + 52 bytes of IP/TCP headers), as the quota counts them. */
const PAYLOAD_SHARE = 1448 / 1500;

scenario(
  '1 landing: a data session (2 MiB unless told), 20 MiB download: application bytes vs billed',
  skip ?? pre.daemon,
  async () => {
    const ratios: number[] = [];
    const ofAllotment: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const c = L().client(1 + (i % 3));
      await L().visitPortal(c);
      const down0 = await L().clientIpBytes(c, 'from_upstream');
      const up0 = await L().clientIpBytes(c, 'to_upstream');
      await S().call('grant', { mac: c.mac, bytes: ALLOT });
      await waitFor(
        'the gate to open',
        10_000,
        async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
        250,
      );
      const file = tmp(`l${i}.bin`);
      const dl = L().download(c, FILE, file, 60);
      const ended = await S().waitSession(c.mac, 'the data session to end', 60_000, (s) => s.state !== 'ACTIVE');
      // curl gives up on its own (the upstream drops a stalled connection after 8 s): what it wrote is all it got.
      const result = await Promise.race([dl.done, sleep(15_000).then(() => null)]);
      dl.kill();
      const app = dl.received();
      const s = (await S().session(c.mac)) ?? ended;
      const ipDown = (await L().clientIpBytes(c, 'from_upstream')) - down0;
      const ipUp = (await L().clientIpBytes(c, 'to_upstream')) - up0;
      // What the customer could get of what was billed: the billed bytes less their IP/TCP headers and the upload.
      const payloadBilled = (s.used - ipUp) * PAYLOAD_SHARE;
      const ratio = app / payloadBilled;
      ratios.push(ratio);
      ofAllotment.push(app / ALLOT);
      figure(
        `L run ${i + 1} c${c.index} (load ${load()}): ${s.state}, allotment ${fmt(ALLOT)}, ` +
          `billed ${fmt(s.used)}; client IP down ${fmt(ipDown)}, up ${fmt(ipUp)}; ` +
          `application (HTTP body) ${fmt(app)} = ${pct(app / ALLOT)} of the allotment, ` +
          `${pct(ratio)} of the billed payload (${fmt(Math.round(payloadBilled))}); ` +
          `IP down not delivered ${fmt(Math.round(ipDown * PAYLOAD_SHARE - app))}; curl ` +
          `exit ${result?.exit ?? 'killed'}`,
      );
      assert.is(s.state, 'EXPIRED', 'ended by its allotment');
      assert.ok(app <= ipDown, 'the application got no more than reached the client');
      assert.ok(ipDown + ipUp <= s.used + 64 * 1024, 'what passed is what was billed (within one GRO segment)');
    }
    const spread = (xs: number[]): string => {
      const v = [...xs].sort((a, b) => a - b);
      return `min ${pct(v[0]!)}, median ${pct(v[Math.floor(v.length / 2)]!)}, max ${pct(v[v.length - 1]!)}`;
    };
    figure(`L ${RUNS} runs: application / billed payload ${spread(ratios)}`);
    figure(`L ${RUNS} runs: application / allotment ${spread(ofAllotment)}`);
  },
);

scenario('2 first 200 for a client granted before the portal lists it', skip ?? pre.daemon, async () => {
  const delays: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const c = L().client(1 + (i % 3));
    await waitFor(
      `the portal to forget ${c.mac}`,
      30_000,
      async () => ((await L().portalState(c.mac)) === 'absent' ? true : undefined),
      250,
    );
    await S().call('grant', { mac: c.mac, bytes: 2 * MiB });
    const prober = new Prober(L(), c, '/ping', 100, 1).start();
    // When the portal first listed the client, and when it showed it authenticated (the gate open).
    let listedAt = 0;
    let openAt = 0;
    await waitFor(
      'a 200',
      20_000,
      async () => {
        const state = await L().portalState(c.mac);
        if (state !== 'absent' && listedAt === 0) listedAt = Date.now();
        if (state === 'Authenticated' && openAt === 0) openAt = Date.now();
        return prober.results.some(Prober.passed) ? true : undefined;
      },
      150,
    ); // not faster: each look is an `ndsctl json`, which competes with sluice's for openNDS's lock
    const results = await prober.stop();
    const first = results[0]!.startedAt;
    const ok = results.find(Prober.passed)!;
    delays.push(ok.endedAt - first);
    const at = (t: number): string => (t === 0 ? '?' : `${t - first} ms`);
    figure(
      `F run ${i + 1} c${c.index} (load ${load()}): first 200 ${ok.endedAt - first} ms after the first request ` +
        `(${results.length} requests); ` +
        `portal listed it at ${at(listedAt)}, showed it authenticated at ${at(openAt)}; the 200's request ` +
        `started at ${at(ok.startedAt)}`,
    );
    const closes = (): number =>
      S()
        .logTail(100_000)
        .split('\n')
        .filter((l) => l.includes(`gate closed mac=${c.mac}`)).length;
    const closed = closes();
    await S().call('terminate', { mac: c.mac });
    // The deauth holds the portal's queue (openNDS took ~7 s for some here): the next run's auth must not wait on it.
    await waitFor(`the gate of ${c.mac} to close`, 30_000, async () => (closes() > closed ? true : undefined), 250);
  }
  const sorted = [...delays].sort((a, b) => a - b);
  figure(
    `F ${RUNS} runs: first 200 after min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, ` +
      `max ${sorted[sorted.length - 1]} ms`,
  );
  assert.ok(delays.length === RUNS);
});

test.run();
