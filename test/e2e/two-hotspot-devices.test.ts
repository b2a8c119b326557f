// tier: lab
/**
 * A hotspot on two devices at once: sluice's own gate (`main.portal 'sluice'`, the lab with no portal daemon) with
 * `shape_device 'br-lan phy1-ap0'`: client 1 on the bridge, client 2 on a second SSID's interface outside it (lab.sh
 * --second-device). Every part hooks both: the gate keeps the unpaid client on the second device out, and a 2 MiB
 * grant to it is counted by the kernel and cut at 2 MiB. (A router whose hotspot spans two devices used to meter one:
 * the client on the other passed uncounted.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { Lab, MiB, fmt, run, sleep, type Client } from './lab.ts';
import { LabRun, dumpLogs, figure, prerequisites } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
const lab = new LabRun();
const { L, S, scenario } = lab;
const SECOND = 'phy1-ap0';
const ALLOTMENT = 2 * MiB;
/** The kernel's quota cuts a data session at its allotment (the Ethernet headers it counts at egress: below it). */
const KERNEL_CUT = 64 * 1024;

if (pre.lab) {
  skipTest(test, 'e2e two-hotspot-devices scenarios', pre.lab, { ciInstalls: true });
} else {
  test.before(async () => {
    lab.lab = await Lab.up({ rate: '8mbit', clients: 2, sluice: true, secondDevice: SECOND });
    figure(`lab ${lab.lab.id}: sluice's own gate, client 1 on br-lan, client 2 on ${SECOND}`);
  });
  test.after(async () => {
    if (lab.failed) dumpLogs(lab.lab, lab.sluice ? () => lab.S().logTail() : null);
    await lab.sluice?.stop();
    await lab.lab?.down();
  });
}

/** Whether the client reaches the upstream's HTTP server (its own port 80, by address). */
async function passes(c: Client): Promise<boolean> {
  const r = await run('ip', [
    ...['netns', 'exec', c.ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '3', '--connect-timeout', '3'],
    ...['-w', '%{http_code}', 'http://10.77.1.2/ping'],
  ]);
  return r.stdout.trim() === '200';
}

scenario('1 both devices metered; the unpaid client on the second device stays out', pre.daemon, async () => {
  lab.sluice = await Sluice.start(L(), {
    pollInterval: 1,
    mainOptions: [`\toption shape_device 'br-lan ${SECOND}'`],
    extraConfig: `config http 'http'\n\toption listen '10.77.0.1:2122'\n`,
  });
  const m = ((await S().call('stats', {})).metering ?? {}) as Record<string, unknown>;
  figure(`stats.metering ${JSON.stringify(m)}`);
  assert.is(m.devices, `br-lan,${SECOND}`);
  assert.is(m.counted_by, 'kernel');
  assert.is(m.problem, null);
  assert.not.ok(await passes(L().client(2)), `an unpaid client on ${SECOND} does not pass`);
});

scenario(`2 a 2 MiB grant to the client on ${SECOND}: counted by the kernel and cut at 2 MiB`, pre.daemon, async () => {
  const c = L().client(2);
  const before = await L().passed(c);
  await S().call('grant', { mac: c.mac, bytes: ALLOTMENT });
  assert.ok(await passes(c), 'its gate is open once the grant answered');
  const dl = L().download(c, '/20MiB', join(L().dir, 'c2.bin'), 40);
  const ended = await S().waitSession(c.mac, 'the data session to end', 40_000, (s) => s.state !== 'ACTIVE');
  await sleep(1500);
  dl.kill();
  const after = await L().passed(c);
  const s = (await S().session(c.mac)) ?? ended;
  const passed = after.upstreamView - before.upstreamView;
  figure(`passed ${fmt(passed)} IP-level down+up, used ${fmt(s.used)}, ${s.state}`);
  assert.is(s.state, 'EXPIRED');
  assert.ok(s.used >= ALLOTMENT, `billed the allotment: used ${s.used}`);
  assert.ok(passed <= ALLOTMENT + KERNEL_CUT, `cut at 2 MiB: ${fmt(passed)} passed`);
  assert.ok(passed >= ALLOTMENT - KERNEL_CUT, `the client got its 2 MiB: ${fmt(passed)} passed`);
  assert.not.ok(await passes(c), 'closed after its allotment');
});

test.run();
