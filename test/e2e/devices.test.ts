// tier: lab
/**
 * Several devices per purchase on the real openNDS lab, with the kernel quota on (main.kernel_quota 1, the default):
 * two lab clients share one data purchase (the buyer's page shows the join code, GET /devices; the second device
 * types it, POST /devices/join: the customer's HTTP path), download at once through openNDS, and the kernel stops them
 * together at the allotment (src/meter/shared-quota.ts splits the bytes left among their quotas after every tick).
 *
 *   1 two devices, one 4 MiB purchase, 20 MiB each in parallel → the session ends; what the devices exchanged (their
 *     own link counters, both directions, with the upstream and the router alike, as sluice bills) is what was billed
 *     within 2% + 64 KiB, and within 64 KiB below the allotment and the documented bound above it;
 *     both gates close
 *   2 removing a joined device closes its gate only; the buyer's stays open
 *   3 three devices, one 4 MiB purchase, only the last to join downloads (the buyer and the other joined device idle,
 *     each holding a share of the quota): the kernel stops that device too, within the same bounds, the session ends
 *     and all three gates close (every device of the purchase, not only the buyer, is cut by its
 *     kernel quota)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { HTTP_SECTION, PAY_PAGE_LISTEN, api, errorCode } from './captive-api.ts';
import { Lab, MiB, OPENNDS10, fmt, sleep, waitFor, type Client } from './lab.ts';
import { LabRun, dumpLogs, figure, prerequisites } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
const PAGE = PAY_PAGE_LISTEN;
const lab = new LabRun();
const { L, S, scenario } = lab;
if (pre.lab) {
  // CI builds no openNDS 10.3.1 (opennds10-devices.test.ts): that skip passes there.
  skipTest(test, 'e2e devices scenarios', pre.lab, { ciInstalls: !OPENNDS10 });
} else {
  test.before(async () => {
    lab.lab = await Lab.up({ rate: '8mbit', theme: PAGE });
    figure(`lab ${lab.lab.id}: ${lab.lab.dir} (uplink tbf 8mbit, portal ${lab.lab.portal}, pay page ${PAGE})`);
  });
  test.after(async () => {
    if (lab.failed) dumpLogs(lab.lab, lab.sluice ? () => lab.S().logTail() : null);
    await lab.sluice?.stop();
    await lab.lab?.down();
  });
}
const ALLOTMENT = 4 * MiB;
/**
 * docs/performance.md "Several devices under the kernel quota": the devices together pass the allotment plus what
 * they passed between the deciding reading and the kernel's change, and a refill of at most KERNEL_SLACK_BYTES.
 */
const BOUND = 128 * 1024;
/** Data cuts land within 64 KiB of the allotment; billed bytes within 2% + 64 KiB of what passed. */
const CUT_SHORT = 64 * 1024;
const BILLED_SLACK = 64 * 1024;
const BILLED_SHARE = 0.02;

/**
 * What the devices of one purchase exchanged over their links (from before their gates opened: the few bytes of the
 * splash and the join before the auth are in it, unbilled) against the session's bill and its allotment. Billing is
 * the kernel counters of sluice's table, the router's own answers included (the pay page, DNS), so the devices' own
 * link counters are the measure; the traffic with the upstream alone leaves those out.
 */
function assertCut(exchanged: number, billed: number): void {
  const apart = Math.abs(billed - exchanged);
  assert.ok(
    apart <= exchanged * BILLED_SHARE + BILLED_SLACK,
    `billed ${fmt(billed)} for ${fmt(exchanged)} exchanged: ${fmt(apart)} apart, more than 2% + 64 KiB`,
  );
  assert.ok(exchanged <= ALLOTMENT + BOUND, `exchanged ${fmt(exchanged)}: more than ${fmt(ALLOTMENT)} + ${fmt(BOUND)}`);
  assert.ok(
    exchanged >= ALLOTMENT - CUT_SHORT,
    `exchanged ${fmt(exchanged)}: cut more than ${fmt(CUT_SHORT)} short of the ${fmt(ALLOTMENT)} paid for`,
  );
}

/**
 * Whether openNDS lets `c` out, by a reading it answered: a read that timed out ('unreadable': the portal busy with
 * another lab's load) is asked again, not taken for a closed gate.
 */
const authenticated = async (c: Client): Promise<boolean> =>
  (await waitFor(
    `openNDS to answer for ${c.mac}`,
    20_000,
    async () => {
      const s = await L().portalState(c.mac);
      return s === 'unreadable' ? undefined : s;
    },
    500,
  )) === 'Authenticated';
const gateOpen = (c: Client): Promise<true> =>
  waitFor(`the gate of ${c.mac} to open`, 10_000, async () => ((await authenticated(c)) ? true : undefined), 100);

/**
 * A purchase for 1 + joiners devices bought by `a` (an admin grant: the lab has no payment backend) and joined by each
 * of `joiners` with the code the buyer's page shows.
 */
async function share(a: Client, ...joiners: Client[]): Promise<string> {
  await L().visitPortal(a);
  const granted = await S().call('grant', { mac: a.mac, bytes: ALLOTMENT, devices: 1 + joiners.length });
  const id = String((granted.session as Record<string, unknown>).id);
  await gateOpen(a);
  const list = await waitFor(
    `sluice to know ${a.mac}`,
    10_000,
    async () => {
      const r = await api(a, '/devices');
      return errorCode(r) === 'ERR_HTTP_CLIENT_UNKNOWN' ? undefined : r;
    },
    250,
  );
  assert.is(list.status, 200, JSON.stringify(list.json));
  const code = String(list.json.code);
  for (const b of joiners) {
    await L().visitPortal(b);
    // sluice learns the client list from the portal's snapshots: a device that just connected may not be in it yet.
    const joined = await waitFor(
      `sluice to know ${b.mac}`,
      10_000,
      async () => {
        const r = await api(b, '/devices/join', { code });
        return errorCode(r) === 'ERR_HTTP_CLIENT_UNKNOWN' ? undefined : r;
      },
      250,
    );
    assert.is(joined.status, 200, JSON.stringify(joined.json));
    await gateOpen(b);
  }
  return id;
}

scenario('sluice daemon starts against the lab (kernel quota on, pay page API)', pre.daemon, async () => {
  lab.sluice = await Sluice.start(L(), { pollInterval: 1, extraConfig: HTTP_SECTION });
  figure(`sluice poll 1 s via ${S().via}, kernel quota ${S().kernelQuota ? 'on' : 'off'}`);
  assert.ok(S().kernelQuota, 'this file measures the kernel quota');
});

scenario(
  '1 two devices share 4 MiB and download at once: together they stop at the allotment, both gates close',
  pre.daemon,
  async () => {
    const a = L().client(1);
    const b = L().client(2);
    const linkBefore = await Promise.all([L().linkIpBytes(a), L().linkIpBytes(b)]);
    await share(a, b);
    const before = await Promise.all([L().passed(a), L().passed(b)]);
    const started = Date.now();
    const dls = [
      L().download(a, '/20MiB', join(L().dir, 'dev-a.bin'), 40),
      L().download(b, '/20MiB', join(L().dir, 'dev-b.bin'), 40),
    ];
    const ended = await S().waitSession(a.mac, 'the shared session to end', 40_000, (s) => s.state !== 'ACTIVE');
    await sleep(1500); // what was in flight lands (or not)
    for (const d of dls) d.kill();
    const after = await Promise.all([L().passed(a), L().passed(b)]);
    const linkAfter = await Promise.all([L().linkIpBytes(a), L().linkIpBytes(b)]);
    const each = [0, 1].map((i) => linkAfter[i]! - linkBefore[i]!);
    const sum = each[0]! + each[1]!;
    const upstream = [0, 1].reduce((n, i) => n + after[i]!.clientView - before[i]!.clientView, 0);
    const s = (await S().session(a.mac)) ?? ended;
    figure(
      `1 two devices, ${fmt(ALLOTMENT)} shared, ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
        `exchanged ${fmt(each[0]!)} + ${fmt(each[1]!)} = ` +
        `${fmt(sum)} (their link counters; with the upstream during the downloads ${fmt(upstream)}); beyond the ` +
        `allotment ${fmt(sum - ALLOTMENT)}; billed ${fmt(s.used)} (${s.state}, ` +
        `${String(s.raw.end_cause ?? s.raw.endCause ?? '')}); unbilled ${fmt(sum - s.used)}`,
    );
    const stats = await S().call('stats', {});
    const meter = stats.meter as Record<string, unknown> | undefined;
    figure(
      `1 meter: kernel_quota_splits ${String(meter?.kernel_quota_splits)}, ` +
        `kernel_quota_ends ${String(meter?.kernel_quota_ends)}, ` +
        `refills ${String(meter?.kernel_quota_refills)}`,
    );
    assert.is(s.state, 'EXPIRED');
    assertCut(sum, s.used);
    for (const c of [a, b]) assert.not.ok(await authenticated(c), `the gate of ${c.mac} is closed`);
  },
);

scenario('2 removing the joined device closes its gate only', pre.daemon, async () => {
  const a = L().client(1);
  const b = L().client(2);
  const id = await share(a, b);
  const removed = await api(a, '/devices/remove', { mac: b.mac });
  assert.is(removed.status, 200, JSON.stringify(removed.json));
  await waitFor(
    `the gate of ${b.mac} to close`,
    10_000,
    async () => ((await authenticated(b)) ? undefined : true),
    100,
  );
  assert.ok(await authenticated(a), 'the buyer keeps its gate');
  assert.is((await S().session(a.mac))?.state, 'ACTIVE');
  const ofB = await S().session(b.mac);
  assert.ok(ofB === null || ofB.id !== id || ofB.state !== 'ACTIVE', 'the removed device is out of the session');
  const ping = await L().fetch(a, '/ping', 3);
  assert.is(ping.http, 200, 'the buyer still reaches the upstream');
  await S().call('terminate', { mac: a.mac });
});

scenario(
  '3 three devices share 4 MiB, only the last to join downloads: the kernel stops it too, all three gates close',
  pre.daemon,
  async () => {
    const devices = [L().client(1), L().client(2), L().client(3)];
    const [a, , c] = devices as [Client, Client, Client];
    const linkBefore = await Promise.all(devices.map((d) => L().linkIpBytes(d)));
    await share(a, ...devices.slice(1));
    const before = await Promise.all(devices.map((d) => L().passed(d)));
    const started = Date.now();
    const dl = L().download(c, '/20MiB', join(L().dir, 'dev-c.bin'), 40);
    const ended = await S().waitSession(a.mac, 'the shared session to end', 40_000, (s) => s.state !== 'ACTIVE');
    await sleep(1500); // what was in flight lands (or not)
    dl.kill();
    const after = await Promise.all(devices.map((d) => L().passed(d)));
    const linkAfter = await Promise.all(devices.map((d) => L().linkIpBytes(d)));
    const each = devices.map((_, i) => linkAfter[i]! - linkBefore[i]!);
    const sum = each.reduce((x, y) => x + y, 0);
    const upstream = devices.reduce((n, _, i) => n + after[i]!.clientView - before[i]!.clientView, 0);
    const s = (await S().session(a.mac)) ?? ended;
    figure(
      `3 three devices, ${fmt(ALLOTMENT)} shared, only the third ` +
        `downloading, ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
        `exchanged ${each.map(fmt).join(' + ')} = ${fmt(sum)} (their link counters; with the upstream during the ` +
        `download ${fmt(upstream)}); beyond the ` +
        `allotment ${fmt(sum - ALLOTMENT)}; ` +
        `billed ${fmt(s.used)} (${s.state}, ${String(s.raw.end_cause ?? s.raw.endCause ?? '')})`,
    );
    const meter = (await S().call('stats', {})).meter as Record<string, unknown> | undefined;
    figure(
      `3 meter: kernel_quota_splits ${String(meter?.kernel_quota_splits)}, ` +
        `kernel_quota_ends ${String(meter?.kernel_quota_ends)}, ` +
        `refills ${String(meter?.kernel_quota_refills)}`,
    );
    assert.is(s.state, 'EXPIRED');
    // Without a quota of its own (or one that let it past the bytes left), the downloading device alone passes what
    // 8 Mbit/s carries between the last reading and the deauth: far beyond the bound at a 1 s poll. And the idle
    // devices' shares went to the one that asked: the purchase is not lost to them.
    assertCut(sum, s.used);
    // Bytes are bounded by the kernel above; the gates close through the portal, one deauth at a time (openNDS
    // 10.3.1's take 2 s each on a loaded machine): each must close, within a hang guard.
    for (const d of devices)
      await waitFor(
        `the gate of ${d.mac} to close`,
        10_000,
        async () => ((await authenticated(d)) ? undefined : true),
        100,
      );
  },
);

if (pre.daemon !== null) scenario('e2e devices', pre.daemon, async () => {});
test.run();
