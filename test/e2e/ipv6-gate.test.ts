// tier: lab
/**
 * IPv6 on the real openNDS lab (nodogsplash's: nodogsplash-ipv6-gate.test.ts) made dual-stack as OpenWrt's LAN is by
 * default (lab.sh --ipv6: ULA addresses, IPv6 forwarding on, no IPv6 filter but sluice's): the portal gates IPv4
 * alone, so without sluice's IPv6 gate a client that never paid fetched from the upstream over IPv6. With the
 * package's config (kernel_quota on): the unpaid client reaches nothing upstream over IPv6 (and still meets the splash
 * page over IPv4), a granted one reaches it, from another IPv6 address of its own too (the gate is by MAC), and after
 * `terminate` its IPv6 stops again, on both addresses.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { Lab, run, waitFor, type Client } from './lab.ts';
import { LAB_PORTAL, LabRun, dumpLogs, figure, prerequisites } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';

const pre = prerequisites();
const lab = new LabRun();
const { L, S, scenario } = lab;
const UPSTREAM6 = 'fd77:1::2';
let server6: ChildProcess | undefined;

if (pre.lab) {
  // CI builds no nodogsplash (SLUICE_E2E_NODOGSPLASH): its lab's skip passes there; an openNDS lab's fails.
  skipTest(test, `e2e IPv6 gate scenarios (${LAB_PORTAL})`, pre.lab, { ciInstalls: LAB_PORTAL !== 'nodogsplash' });
} else {
  test.before(async () => {
    lab.lab = await Lab.up({
      rate: null,
      clients: 2,
      ipv6: true,
      ...(LAB_PORTAL === 'nodogsplash' && { nodogsplash: process.env['SLUICE_E2E_NODOGSPLASH']! }),
    });
    // The upstream over IPv6: a server on its ULA address (the lab's own server listens on IPv4).
    const code = `require('http').createServer((q, r) => r.end('ok')).listen(80, '${UPSTREAM6}')`;
    server6 = spawn('ip', ['netns', 'exec', lab.lab.upNs, process.execPath, '-e', code], { stdio: 'ignore' });
    figure(`lab ${lab.lab.id}: portal ${lab.lab.portal}, dual-stack`);
  });
  test.after(async () => {
    if (lab.failed) dumpLogs(lab.lab, lab.sluice ? () => lab.S().logTail() : null);
    server6?.kill('SIGKILL');
    await lab.sluice?.stop();
    await lab.lab?.down();
  });
}

/** One GET from the client (from address `from`, else its own): the HTTP status (0: no answer). */
async function status(c: Client, url: string, from?: string): Promise<number> {
  const r = await run('ip', [
    ...['netns', 'exec', c.ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '3', '--connect-timeout', '3'],
    ...(from === undefined ? [] : ['--interface', from]),
    ...['-w', '%{http_code}', url],
  ]);
  return Number(r.stdout.trim() || 0);
}
const v6 = `http://[${UPSTREAM6}]/`;

scenario('before sluice: the dual-stack LAN reaches the upstream over IPv6 past the portal', pre.daemon, async () => {
  await waitFor('the IPv6 upstream', 15_000, async () =>
    (await status(L().client(1), v6)) === 200 ? true : undefined,
  );
  lab.sluice = await Sluice.start(L(), { pollInterval: 1 });
});

scenario(
  '1 an unpaid client reaches nothing upstream over IPv6, and the splash page over IPv4',
  pre.daemon,
  async () => {
    const c = L().client(1);
    await waitFor('the IPv6 gate', 15_000, async () => ((await status(c, v6)) === 0 ? true : undefined), 500);
    assert.is(await status(c, 'http://10.77.1.2/ping'), 307, "the portal's splash redirect over IPv4");
  },
);

scenario('2 granted: IPv6 passes; terminated: it stops again', pre.daemon, async () => {
  const c = L().client(2);
  await waitFor(`openNDS to list ${c.mac}`, 30_000, async () => {
    await status(c, 'http://10.77.1.2/ping');
    return (await L().portalClient(c.mac)) ? true : undefined;
  });
  await S().call('grant', { mac: c.mac, seconds: 600 });
  await waitFor('the gate to open', 15_000, async () =>
    (await L().portalState(c.mac)) === 'Authenticated' ? true : undefined,
  );
  await waitFor('IPv6 through', 15_000, async () => ((await status(c, v6)) === 200 ? true : undefined), 500);
  // Another IPv6 address under the same MAC (a privacy address, a new prefix): the gate is by MAC, so it passes too.
  const other = `fd77::${300 + c.index}`;
  const added = await run('ip', [
    'netns',
    'exec',
    c.ns,
    'ip',
    '-6',
    'addr',
    'add',
    `${other}/64`,
    'dev',
    'eth0',
    'nodad',
  ]);
  assert.is(added.code, 0, added.stderr);
  await waitFor('IPv6 through from the new address', 15_000, async () =>
    (await status(c, v6, other)) === 200 ? true : undefined,
  );
  await S().call('terminate', { mac: c.mac });
  await waitFor('IPv6 stopped', 15_000, async () => ((await status(c, v6)) === 0 ? true : undefined), 500);
  assert.is(await status(c, v6, other), 0, 'the new address stopped with the session');
  assert.is(await status(L().client(1), v6), 0, 'the other client still out');
});

test.run();
