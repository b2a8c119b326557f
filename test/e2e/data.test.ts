// tier: lab
/**
 * End to end, data sessions: a real openNDS 9.10 gating real clients in network namespaces (docs/testing.md),
 * driven by the built sluice over its embedded ubus broker. One lab for the whole file; the uplink is shaped to
 * 8 Mbit/s (before the gate) so enforcement precision is measurable.
 *
 *   baseline   openNDS's own quota (no sluice): 2 MiB quota, 20 MiB download → what passed
 *   1 data     2 MiB data session, 20 MiB download → gate closes; overshoot vs the baseline
 *
 * Sessions are opened with the admin `grant` method: `purchase` refuses admin-only payment methods and the lab has
 * no payment backend; past the payment, a grant and a purchase take the same path (session → gate → meter).
 * Before each grant the client opens a page and gets the portal's redirect, as a customer does before paying.
 *   2 top-up   grant more during a download → same connection, allotments add, usage kept
 *   3 terminate during a download → traffic stops, the gate closes (how soon: a figure)
 *   4 three clients at once → each metered within 2% of what it really got, each cut at its own allotment
 *   5 an unpaid client (c4) stays behind the portal the whole time
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GUARD_FACTOR, LAB_BINAUTH, MiB, OPENNDS10, fmt, pct, sleep, waitFor, type FetchResult } from './lab.ts';
import { LAB_PORTAL, Prober, figure, labRun, prerequisites } from './scenario.ts';
import { Sluice } from './sluice.ts';

// SLUICE_E2E_POLL_S: measure at another poll interval (docs/performance.md has figures at 1 s and 5 s).
const POLL_S = Number(process.env['SLUICE_E2E_POLL_S'] ?? 1);
const pre = prerequisites();
// openNDS at its default checkinterval (15 s), as on routers: it checks its own quota (the baseline) that often, and a
// shorter interval runs its gateway check, whose failure makes openNDS 9.x exit, that much more often
// (docs/captive-portal.md "Portal restarts"). sluice's scenarios do not depend on it (docs/testing.md).
const run = labRun('data', pre);
const { L, S, scenario } = run;
let baselineOvershoot: number | null = null;

interface Passed {
  acked: number;
  upstreamView: number;
  clientView: number;
}

/**
 * What passed the gate for a client during `fn`: the TCP payload the client acknowledged (download only), and both
 * directions at IP level as openNDS counts them, from the upstream's side and from the client's own counters.
 */
async function measure<T>(client: number, fn: () => Promise<T>): Promise<Passed & { value: T }> {
  const c = L().client(client);
  const before = await L().passed(c);
  const value = await fn();
  return { value, ...since(before, await L().passed(c)) };
}

function since(
  before: { ackedPayload: number; upstreamView: number; clientView: number },
  after: { ackedPayload: number; upstreamView: number; clientView: number },
): Passed {
  return {
    acked: after.ackedPayload - before.ackedPayload,
    upstreamView: after.upstreamView - before.upstreamView,
    clientView: after.clientView - before.clientView,
  };
}

const tmp = (name: string): string => join(L().dir, name);

const noQuota = LAB_PORTAL === 'nodogsplash' ? "nodogsplash's auth takes no limits: no portal quota to compare" : null;
/**
 * The baseline's download: more than openNDS lets through before its first check after the quota (up to 15 s at 8
 * Mbit/s).
 */
const BASELINE_BYTES = 40 * MiB;
scenario('baseline: openNDS own 2 MiB quota on the 8 Mbit/s link, 40 MiB download', pre.lab ?? noQuota, async () => {
  const c = L().client(1);
  // openNDS authenticates only a client it lists (one that sent it traffic): without this the auth raced the
  // client's first packets and failed ("Failed to authenticate client") in ~1 of 10 runs.
  await L().visitPortal(c);
  // ndsctl auth <mac> <minutes> <up_rate> <down_rate> <up_quota_KiB> <down_quota_KiB>; 0 would mean "default".
  const askedAt = Date.now();
  const auth = await L().ndsctl('auth', c.mac, '10', '0', '0', '1099511627776', '2048');
  assert.is(
    auth.code,
    0,
    `ndsctl auth: exit ${auth.code} after ${Date.now() - askedAt} ms: ${auth.stdout.trim()} ${auth.stderr.trim()}`,
  );
  const started = Date.now();
  const m = await measure(1, async () => {
    const dl = L().download(c, `/bytes/${BASELINE_BYTES}`, tmp('baseline.bin'), 60);
    const cutAfter = await waitFor(
      'openNDS to end the quota session',
      45_000,
      async () => {
        const state = await L().portalState(c.mac);
        return state === 'Authenticated' ? undefined : Date.now() - started;
      },
      250,
    );
    await sleep(1500); // what was in flight lands (or not)
    dl.kill();
    return cutAfter;
  });
  baselineOvershoot = m.acked - 2 * MiB;
  figure(
    `baseline openNDS download quota 2048 KiB: cut after ${(m.value / 1000).toFixed(1)} s; passed ${fmt(m.acked)} ` +
      `payload (upstream acked); overshoot ${fmt(baselineOvershoot)} payload`,
  );
  assert.ok(m.acked < BASELINE_BYTES, `openNDS stopped the download before its ${BASELINE_BYTES} bytes`);
  assert.ok(m.acked >= 2 * MiB * 0.95, 'the client got about its quota');
});

const needDaemon = pre.daemon;
scenario('sluice daemon starts against the lab', needDaemon, async () => {
  run.sluice = await Sluice.start(L(), { pollInterval: POLL_S, checkpointInterval: 5 });
  const control = /portal control.*/.exec(S().logTail(200))?.[0] ?? '(not logged)';
  figure(
    `sluice poll_interval ${POLL_S} s, reaching ${L().portal} via its ${S().via}, kernel ` +
      `quota ${S().kernelQuota ? 'on' : 'off'}: ${control}`,
  );
});

scenario('1 data session of 2 MiB, 20 MiB download: the gate closes at the allotment', needDaemon, async () => {
  const c = L().client(1);
  await L().visitPortal(c);
  const m = await measure(1, async () => {
    const reply = await S().call('grant', { mac: c.mac, bytes: 2 * MiB });
    figure(`1 grant reply: ${JSON.stringify(reply)}`);
    const opened = await waitFor(
      'the gate to open',
      10_000,
      async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
      250,
    );
    assert.ok(opened);
    const dl = L().download(c, '/20MiB', tmp('s1.bin'), 40);
    const ended = await S().waitSession(c.mac, 'the data session to end', 40_000, (s) => s.state !== 'ACTIVE');
    await sleep(1500);
    dl.kill();
    return ended;
  });
  const s = (await S().session(c.mac)) ?? m.value;
  const overshootPayload = m.acked - 2 * MiB;
  const overshootIp = m.upstreamView - 2 * MiB;
  const overshootMeter = s.used - s.allotment;
  figure(
    `1 sluice 2 MiB: state ${s.state}, allotment ${fmt(s.allotment)}, used (openNDS counters, down+up) ${fmt(s.used)}`,
  );
  figure(
    `1 passed ${fmt(m.acked)} download payload (upstream acked); ${fmt(m.upstreamView)} IP-level down+up seen from ` +
      `the upstream, ${fmt(m.clientView)} from the client`,
  );
  figure(
    `1 overshoot beyond 2 MiB: ${fmt(overshootPayload)} download payload (openNDS's own quota, download only: ` +
      `${baselineOvershoot === null ? 'n/a' : fmt(baselineOvershoot)}), ${fmt(overshootIp)} IP-level down+up, ` +
      `${fmt(overshootMeter)} in sluice's meter; unbilled (passed − used) ${fmt(m.upstreamView - s.used)}`,
  );
  assert.is(s.state, 'EXPIRED');
  assert.ok(s.used >= s.allotment, 'the session ended because the allotment was used');
  assert.is.not(await L().portalState(c.mac), 'Authenticated', 'the gate is closed');
  const after = await L().fetch(c, '/ping', 2);
  assert.is.not(after.http, 200, 'the upstream is unreachable after the end');
  assert.ok(m.acked < 20 * MiB, 'the download was cut');
  assert.ok(m.clientView >= 2 * MiB * 0.99, 'the client got what it paid for');
});

scenario('2 top-up during a download: same connection, allotments add, usage kept', needDaemon, async () => {
  const c = L().client(2);
  await L().visitPortal(c);
  // 4 MiB: the 5 MiB download needs the top-up, and at 8 Mbit/s there are ~3 s to see 512 KiB used and top up (with
  // 2 MiB, the meter's sparse readings near the crossing (cut-at-crossing) could end the session before the top-up).
  await S().call('grant', { mac: c.mac, bytes: 4 * MiB });
  await waitFor(
    'the gate to open',
    10_000,
    async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
    250,
  );
  const token0 = (await L().portalClient(c.mac))?.token;
  const m = await measure(2, async () => {
    const dl = L().download(c, '/5MiB', tmp('s2.bin'), 40);
    const before = await S().waitSession(c.mac, 'usage to reach 512 KiB', 20_000, (s) => s.used >= 512 * 1024, 150);
    const topped = await S().call('grant', { mac: c.mac, bytes: 4 * MiB });
    const after = await S().session(c.mac);
    const result = await dl.done;
    return { before, topped, after, result };
  });
  const { before, after, result } = m.value;
  await S().meterCaughtUp(); // two ticks: the meter catches up with the end of the download
  const final = await S().session(c.mac);
  const token1 = (await L().portalClient(c.mac))?.token;
  figure(
    `2 before top-up: allotment ${fmt(before.allotment)} used ${fmt(before.used)}; after: allotment ` +
      `${after ? fmt(after.allotment) : '?'} used ${after ? fmt(after.used) : '?'}; download curl ` +
      `exit ${result.exit}, ` +
      `${fmt(result.bytes)}; final used ${final ? fmt(final.used) : '?'}; portal token ${token0} → ${token1}`,
  );
  assert.ok(after, 'session readable after the top-up');
  assert.ok(final, 'session readable at the end');
  assert.is(after!.id, before.id, 'the top-up extended the same session');
  assert.is(after!.allotment, before.allotment + 4 * MiB, 'allotments add');
  assert.ok(after!.used >= before.used, 'usage is kept across the top-up');
  assert.is(result.exit, 0, 'the download in progress completed');
  assert.is(result.bytes, 5 * MiB);
  assert.is(final!.state, 'ACTIVE');
  assert.is(token1, token0, 'the gate was not re-authed (same openNDS token)');
  assert.ok(final!.used >= m.acked, `used ${final!.used} counts the whole download (${m.acked} payload)`);
});

// How soon traffic stops is a figure (one poll interval on an idle machine; docs/performance.md), not an assertion:
// timing goals live in bench/. What must hold: it stops, the session is TERMINATED and the gate closed.
scenario('3 terminate over ubus: traffic stops, the gate closes', needDaemon, async () => {
  const c = L().client(2);
  await S().call('grant', { mac: c.mac, bytes: 20 * MiB }); // top-up: plenty left
  const kept = OPENNDS10 || LAB_BINAUTH ? await keptToken(c.mac) : undefined;
  const dl = L().download(c, '/20MiB', tmp('s3.bin'), 40);
  await waitFor('the download to flow', 10_000, async () => (dl.received() > 1 * MiB ? true : undefined), 50);
  const calledAt = Date.now();
  await S().call('terminate', { mac: c.mac });
  const repliedAt = Date.now();
  // Watch the client's file: the last moment it grew is when traffic stopped. Stopped: no growth for 3 s (the
  // download runs at 1 MB/s while it flows); a hang guard of 30 s × GUARD_FACTOR (a portal that crashed at the deauth
  // is started again by procd, and its restart drops every gate).
  let last = dl.received();
  let lastGrowth = repliedAt;
  const guardUntil = repliedAt + 30_000 * GUARD_FACTOR;
  while (Date.now() - lastGrowth < 3000 && Date.now() < guardUntil) {
    await sleep(25);
    const n = dl.received();
    if (n > last) {
      last = n;
      lastGrowth = Date.now();
    }
  }
  const stopped = Date.now() - lastGrowth >= 3000;
  dl.kill();
  const s = await S().session(c.mac);
  const stopDelay = lastGrowth - repliedAt;
  figure(
    `3 terminate: call took ${repliedAt - calledAt} ms; last byte reached the client ${stopDelay} ms after the reply ` +
      `(${lastGrowth - calledAt} ms after the call); poll interval ${POLL_S * 1000} ms; state ${s?.state}`,
  );
  assert.is(s?.state, 'TERMINATED');
  assert.is.not(await L().portalState(c.mac), 'Authenticated', 'the gate is closed');
  assert.ok(stopped, `traffic still flowed ${Date.now() - repliedAt} ms after terminate`);
  if (kept !== undefined) {
    // The package's BinAuth (openNDS 10, or 9.10 told to run it): the deauth went by the token it kept, and spent it.
    const gates = ((await S().call('stats', {})) as { gates?: Record<string, number> }).gates ?? {};
    // (Through the ndsctl command sluice has no socket to read beside.)
    if (S().via === 'socket')
      assert.ok((gates['portal_by_token'] ?? 0) > kept.byTokenBefore, `a call by token: ${JSON.stringify(gates)}`);
    assert.is(readFileSync(kept.file, 'utf8'), '', 'the deauth emptied the kept token');
  }
});

/**
 * openNDS 10 runs the package's BinAuth at each auth (lab.sh), and 9.10 with SLUICE_LAB_BINAUTH=1: it keeps the
 * client's token beside the control socket (src/portal/binauth-tokens.ts), the very token openNDS lists for it. The
 * file, and sluice's calls by token so far.
 */
async function keptToken(mac: string): Promise<{ file: string; byTokenBefore: number }> {
  const file = join(dirname(L().portalSocketPath), 'sluice-tokens', mac);
  const token = (await L().portalClient(mac))?.token;
  assert.ok(token, `openNDS lists ${mac} with a token`);
  assert.is(existsSync(file) ? readFileSync(file, 'utf8') : 'no file', `${mac} ${token}\n`, 'the BinAuth kept it');
  const gates = ((await S().call('stats', {})) as { gates?: Record<string, number> }).gates ?? {};
  return { file, byTokenBefore: gates['portal_by_token'] ?? 0 };
}

scenario('4 three clients at once: metered within 2% each, cut each at its own allotment', needDaemon, async () => {
  const allot = [2 * MiB, 4 * MiB, 6 * MiB];
  const first = [1 * MiB, 2 * MiB, 3 * MiB];
  const cs = [1, 2, 3].map((i) => L().client(i));
  for (const c of cs) await L().visitPortal(c);
  // What passed is counted from before the grants, as the router counts from the auth: what reaches a client right
  // after it is its usage too, and the meter bills it. Here the upstream's retransmissions of the download scenario 3's
  // terminate cut off reach c2 as soon as its gate opens again (10.6–12.1 KiB at load 6, 67.7 KiB in a CI run, seen
  // by the client's own counters before any download of this scenario began).
  const p0 = await Promise.all(cs.map((c) => L().passed(c)));
  const used0: number[] = [];
  for (const [i, c] of cs.entries()) {
    const reply = await S().call('grant', { mac: c.mac, bytes: allot[i] });
    used0.push(Number((reply['session'] as { used?: string } | undefined)?.used ?? 0));
  }
  for (const c of cs) {
    await waitFor(
      `the gate of ${c.mac}`,
      10_000,
      async () => ((await L().portalState(c.mac)) === 'Authenticated' ? true : undefined),
      250,
    );
  }

  // Phase 1: downloads that fit, all at once; usage must match what really passed.
  const res = await Promise.all(cs.map((c, i) => L().download(c, `/bytes/${first[i]}`, tmp(`s4a-${i}.bin`), 40).done));
  await S().meterCaughtUp();
  for (const [i, c] of cs.entries()) {
    const s = await S().session(c.mac);
    const used = (s?.used ?? 0) - (used0[i] ?? 0);
    const p = since(p0[i]!, await L().passed(c));
    const err = (used - p.upstreamView) / p.upstreamView;
    figure(
      `4 c${c.index}: downloaded ${fmt(res[i]!.bytes)}; sluice used ${fmt(used)}; passed (IP, down+up) ` +
        `${fmt(p.upstreamView)} seen from the upstream, ${fmt(p.clientView)} from the client; used vs ` +
        `upstream ${pct(err)}, ` +
        `vs client ${pct((used - p.clientView) / p.clientView)}, vs the bare download ` +
        `payload ${pct((used - p.acked) / p.acked)}`,
    );
    assert.is(res[i]!.exit, 0, `c${c.index} download completed`);
    // Two independent views of what passed: the upstream's is an estimate (acknowledged payload + assumed headers; with
    // three clients sharing the link it ran 1.6–2.2% above both the meter and the client's own counters in some runs),
    // the client's nft counters are exact IP bytes. Usage must match one of them within 2%.
    const errClient = (used - p.clientView) / p.clientView;
    if (!(Math.min(Math.abs(err), Math.abs(errClient)) <= 0.02)) {
      // What the daemon saw, for the failure message: was it metering at all (ticks), and what does the session say?
      const stats = await S()
        .call('stats', {})
        .catch((e: unknown) => ({ error: String(e) }));
      const meter = (stats as { meter?: Record<string, unknown> }).meter ?? stats;
      assert.unreachable(
        `c${c.index}: usage ${used} within 2% of ${p.upstreamView} (upstream, ${pct(err)}) or ${p.clientView} ` +
          `(client, ${pct(errClient)}); session ${JSON.stringify(s?.raw ?? null)}, used before ${used0[i]}; ` +
          `meter ${JSON.stringify(meter)}`,
      );
    }
  }

  // Phase 2: everyone keeps downloading; each must be cut at its own allotment.
  const t0 = Date.now();
  const dls = cs.map((c, i) => L().download(c, '/20MiB', tmp(`s4b-${i}.bin`), 40));
  const ends = await Promise.all(
    cs.map(async (c) => {
      const s = await S().waitSession(
        c.mac,
        `the session of ${c.mac} to end`,
        45_000,
        (x) => x.state !== 'ACTIVE',
        250,
      );
      return { s, at: Date.now() - t0 };
    }),
  );
  await sleep(1500);
  for (const d of dls) d.kill();
  for (const [i, c] of cs.entries()) {
    const { s, at } = ends[i]!;
    const p = since(p0[i]!, await L().passed(c));
    const final = (await S().session(c.mac)) ?? s;
    const billed = final.used - (used0[i] ?? 0);
    figure(
      `4 c${c.index}: ended ${s.state} after ${(at / 1000).toFixed(1)} s; allotment ${fmt(s.allotment)}, ` +
        `used ${fmt(final.used)}; ` +
        `passed ${fmt(p.upstreamView)} IP down+up (${fmt(p.acked)} download payload); ` +
        `overshoot ${fmt(p.upstreamView - allot[i]!)} ` +
        `passed, ${fmt(final.used - final.allotment)} in sluice's meter; unbilled (passed − ` +
        `used) ${fmt(p.upstreamView - billed)}; ` +
        `by the client's own counters: passed ${fmt(p.clientView)}, unbilled ${fmt(p.clientView - billed)}`,
    );
    assert.is(s.state, 'EXPIRED', `c${c.index} ended by its data limit`);
    assert.is(s.allotment, allot[i]);
    assert.ok(p.clientView >= allot[i]! * 0.99, `c${c.index} got what it paid for`);
    assert.ok(p.acked < allot[i]! + 8 * MiB, `c${c.index} was cut (got ${p.acked})`);
  }
  const order = ends
    .map((e, i) => ({ i, at: e.at }))
    .sort((a, b) => a.at - b.at)
    .map((e) => `c${e.i + 1}`);
  figure(`4 cut order: ${order.join(', ')}`);
});

scenario('5 an unpaid client stays behind the portal the whole time', pre.lab, async () => {
  const results = await run.unpaid!.stop();
  const c = L().client(4);
  const passed = results.filter(Prober.passed).length;
  const toSplash = (r: FetchResult): boolean => r.http === 307 && r.redirect.includes(':2050/');
  // openNDS itself sometimes answers a 403 of its own instead of the 307 (seen with a CPU hog at load 5–7: 1 of 59
  // requests, 125 bytes, while the upstream saw none): that answer keeps the client behind the portal too, and the
  // upstream count below proves nothing came from beyond the gate.
  const refusedByPortal = (r: FetchResult): boolean => r.exit === 0 && r.http === 403;
  const redirected = results.filter(toSplash).length;
  const refused = results.filter(refusedByPortal).length;
  const reached = await L().upstreamRequests(c);
  figure(
    `5 unpaid c4: ${results.length} requests over the run: ${redirected} got the portal's 307, ${refused} the ` +
      `portal's 403, ` +
      `${passed} reached the upstream; upstream saw ${reached} requests from ${c.ip}`,
  );
  assert.ok(results.length > 0);
  assert.is(passed, 0, 'no request of the unpaid client got through');
  assert.is(reached, 0, 'the upstream never heard from the unpaid client');
  assert.ok(redirected > 0, 'the portal redirected the unpaid client to its splash page');
  const other = results.filter((r) => !toSplash(r) && !refusedByPortal(r));
  assert.equal(other, [], 'every HTTP request was answered by the portal (its 307 to the splash page, or its own 403)');
});

test.run();
