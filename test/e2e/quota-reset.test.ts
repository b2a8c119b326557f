// tier: lab
/**
 * The kernel quota reset or deleted behind sluice's back (root on the router: `nft reset quotas`, `nft delete table
 * netdev sluice_quota`), on the openNDS lab with sluice's kernel counters and quota (main.kernel_quota 1, the
 * default), the uplink shaped to 8 Mbit/s (≈ 1 MB/s). A 4 MiB grant, 1 MiB downloaded, then the quota's count reset
 * (or its table deleted), the download going on: a reading within two poll intervals of the end sees the kernel's
 * quota holding more than the session has left (or none), re-arms it with what is left, and the client is cut at the
 * allotment: the link passes at most 64 KiB past it, all of it billed (docs/operations.md "Kernel quota"). The reset
 * comes ~3 s before the crossing, so two or more readings (poll 1 s) fall between: one that comes in the last interval
 * before the crossing is seen only by the reading at the crossing, which bills what passed (the readings' bound).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { LAB_SH, MiB, fmt, run, sleep, waitFor } from './lab.ts';
import { figure, labRun, prerequisites } from './scenario.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
const lab = labRun('quota-reset', pre);
const { L, S, scenario } = lab;
const ALLOTMENT = 4 * MiB;
/** What may pass beyond the allotment, or unbilled: one GSO segment the kernel's last drop may leave. */
const CUT_BOUND = 64 * 1024;

const rt = (...args: string[]) => run(LAB_SH, ['rt', L().dir, ...args]);

scenario('sluice daemon starts against the lab (kernel quota on)', pre.daemon, async () => {
  lab.sluice = await Sluice.start(L(), { pollInterval: 1, checkpointInterval: 5 });
  assert.ok(S().kernelQuota, 'this file measures the kernel quota');
});

/** A 4 MiB grant to client `index`, 1 MiB downloaded, `tamper` run on the router, the download going on to the end. */
async function tamperedAtHalf(index: number, what: string, tamper: string[]): Promise<void> {
  const c = L().client(index);
  await L().visitPortal(c);
  const before = await L().linkIpBytes(c);
  await S().call('grant', { mac: c.mac, bytes: ALLOTMENT });
  await waitFor(
    'the gate to open',
    10_000,
    async () => ((await L().portalState(c.mac)) === 'Authenticated' ? 1 : undefined),
    250,
  );
  const dl = L().download(c, '/20MiB', join(L().dir, `${index}.bin`), 40);
  await waitFor('1 MiB', 30_000, async () => (dl.received() >= MiB ? 1 : undefined), 50);
  const atTamper = (await L().linkIpBytes(c)) - before;
  const r = await rt(...tamper);
  assert.is(r.code, 0, r.stderr);
  const ended = await S().waitSession(c.mac, 'the session to end', 60_000, (s) => s.state !== 'ACTIVE');
  // The download's last bytes arrive, or are dropped, within a moment of the cut: then the link is measured.
  await sleep(1500);
  dl.kill();
  await dl.done;
  await S().meterCaughtUp();
  const passed = (await L().linkIpBytes(c)) - before;
  const s = (await S().session(c.mac)) ?? ended;
  const stats = await S().call('stats', {});
  figure(
    `${what} at ${fmt(atTamper)} passed: state ${s.state}, used ${fmt(s.used)} of ${fmt(s.allotment)}; the link ` +
      `passed ${fmt(passed)}: ${fmt(passed - ALLOTMENT)} past the allotment, ${fmt(passed - s.used)} unbilled; ` +
      `stats.kernel_quota ${JSON.stringify(stats['kernel_quota'])}`,
  );
  assert.is(s.state, 'EXPIRED');
  assert.ok(passed - ALLOTMENT <= CUT_BOUND, `past the allotment: ${passed - ALLOTMENT}`);
  assert.ok(passed - s.used <= CUT_BOUND, `unbilled: ${passed - s.used}`);
}

scenario('1 `nft reset quotas` at 1 MiB of a 4 MiB grant: cut at the allotment, billed', pre.daemon, () =>
  tamperedAtHalf(1, 'nft reset quotas', ['nft', 'reset', 'quotas']),
);

scenario('2 the quota table deleted at 1 MiB of a 4 MiB grant: cut at the allotment, billed', pre.daemon, () =>
  tamperedAtHalf(2, 'quota table deleted', ['nft', 'delete', 'table', 'netdev', 'sluice_quota']),
);

test.run();
