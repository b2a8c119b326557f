// tier: lab
/**
 * sluice as its own gate (`main.portal 'sluice'`): the lab with no portal daemon at all (lab.sh --sluice), dual-stack,
 * its clients resolving through the router's dnsmasq, which names the systems' probe hosts as the upstream (it answers
 * each probe as the real server does) and announces the captive API as the init script configures it for a pay page
 * behind a TLS front (a DHCP client gets option 114). The daemon installs the gate. An unpaid device's probes, each as
 * its system sends it, get a 302 to the pay page, its HTTPS a reset at once, its IPv4 and IPv6 to the upstream nothing;
 * a grant opens the gate by the time it answers and the same probes get the real answers; a data grant is cut by the
 * kernel at its allotment; a terminate closes the gate and the device's next packet on an open connection is answered
 * with a reset, a download the device only receives as well; a daemon killed with -9 leaves the paid passing and the
 * unpaid out, and the restart squares the set with the journal; `nft flush ruleset` and the gate is back within a
 * second, and so are the paid after every table went and fw4's include made the gate again with an empty set.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, MiB, run, sleep, waitFor, type Client } from './lab.ts';
import { LabRun, dumpLogs, figure, prerequisites } from './scenario.ts';
import { skipTest } from '../helpers/skip.ts';
import { Sluice } from './sluice.ts';
import { announce } from '../helpers/init-announce.ts';

const pre = prerequisites();
const lab = new LabRun();
const { L, S, scenario } = lab;
const LISTEN = '10.77.0.1:2122';
const PAY_PAGE = `http://${LISTEN}/portal`;
const UPSTREAM6 = 'fd77:1::2';
let server6: ChildProcess | undefined;
/** The pay page behind a TLS front, and the captive API's URL the init script announces for it. */
const FRONT_PAGE = 'https://wifi.example.net/portal';
const CAPTIVE_API = 'https://wifi.example.net/captive';
/** What the init script puts in /etc/config/dhcp's lan section for `portal 'sluice'` with that page. */
const ANNOUNCED = announce('sluice', FRONT_PAGE, ['lan=dhcp']).dhcp.flatMap((l) =>
  l.startsWith('dhcp_option=') ? [l.slice('dhcp_option='.length)] : [],
);

/** Each system's probe, as it sends it: its URL, its user agent, and what its internet answers. */
const PROBES = [
  { os: 'Android', url: 'http://connectivitycheck.gstatic.com/generate_204', agent: 'Dalvik/2.1.0', ok: 204 },
  { os: 'Apple', url: 'http://captive.apple.com/hotspot-detect.html', agent: 'CaptiveNetworkSupport-481', ok: 200 },
  { os: 'Windows', url: 'http://www.msftconnecttest.com/connecttest.txt', agent: 'Microsoft NCSI', ok: 200 },
  { os: 'Firefox', url: 'http://detectportal.firefox.com/canonical.html', agent: 'Mozilla/5.0 Firefox/128', ok: 200 },
  { os: 'any page', url: 'http://upstream.lab/some/page?x=1', agent: 'curl', ok: 404 },
] as const;

if (pre.lab) {
  skipTest(test, 'e2e sluice gate scenarios', pre.lab, { ciInstalls: true });
} else {
  test.before(async () => {
    lab.lab = await Lab.up({ rate: '8mbit', clients: 3, ipv6: true, sluice: true, dhcpOptions: ANNOUNCED });
    const code = `require('http').createServer((q, r) => r.end('ok')).listen(80, '${UPSTREAM6}')`;
    server6 = spawn('ip', ['netns', 'exec', lab.lab.upNs, process.execPath, '-e', code], { stdio: 'ignore' });
    lab.sluice = await Sluice.start(lab.lab, {
      extraConfig: `config http 'http'\n\toption listen '${LISTEN}'\n`,
    });
    figure(`lab ${lab.lab.id}: no portal daemon, sluice is the gate, dual-stack`);
  });
  test.after(async () => {
    if (lab.failed) dumpLogs(lab.lab, lab.sluice ? () => lab.S().logTail() : null);
    server6?.kill('SIGKILL');
    await lab.sluice?.stop();
    await lab.lab?.down();
  });
}

interface Answer {
  exit: number;
  status: number;
  location: string;
  ms: number;
}

/** One request from the client as curl does it: exit code, status, Location, how long it took. */
async function probe(c: Client, url: string, agent = 'curl', extra: string[] = []): Promise<Answer> {
  const started = Date.now();
  const r = await run('ip', [
    ...['netns', 'exec', c.ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '5', '--connect-timeout', '5'],
    ...['-A', agent, '-w', '%{http_code} %{redirect_url}', ...extra, url],
  ]);
  const [status = '0', location = ''] = r.stdout.trim().split(' ');
  return { exit: r.code ?? -1, status: Number(status), location, ms: Date.now() - started };
}

async function nft(args: string[]): Promise<string> {
  const r = await run('ip', ['netns', 'exec', L().rtNs, 'nft', ...args]);
  return r.code === 0 ? r.stdout : '';
}

const passes = async (c: Client): Promise<boolean> => (await probe(c, 'http://upstream.lab/ping')).status === 200;

scenario(
  "0 the LAN's DHCP announces the captive API (RFC 8910 option 114) as the init script configures it",
  pre.daemon,
  async () => {
    assert.equal(ANNOUNCED, [`114,${CAPTIVE_API}`, `option6:103,${CAPTIVE_API}`]);
    const c = L().client(3);
    // A DHCP client asking for option 114 as a phone does; its hook only prints what came (the lease stays as it is).
    const hook = join(L().dir, 'udhcpc-114.sh');
    writeFileSync(hook, '#!/bin/sh\n[ "$1" = bound ] && echo "opt114=$opt114"\nexit 0\n', { mode: 0o755 });
    const r = await run('ip', [
      ...['netns', 'exec', c.ns, 'busybox', 'udhcpc', '-i', 'eth0', '-O', '114', '-s', hook],
      ...['-q', '-n', '-t', '5', '-T', '1'],
    ]);
    const hex = /opt114=([0-9a-f]+)/.exec(r.stdout)?.[1];
    assert.ok(hex, `no option 114 in the lease: ${r.stdout} ${r.stderr}`);
    assert.is(Buffer.from(hex!, 'hex').toString('utf8'), CAPTIVE_API);
    figure(`DHCP: option 114 = ${CAPTIVE_API}`);
  },
);

scenario(
  '1 unpaid: every probe is sent to the pay page, HTTPS is reset at once, nothing passes',
  pre.daemon,
  async () => {
    const c = L().client(1);
    await waitFor('the gate table', 20_000, async () =>
      (await nft(['list', 'table', 'inet', 'sluice_portal'])) ? true : undefined,
    );
    for (const p of PROBES) {
      const a = await probe(c, p.url, p.agent);
      assert.is(a.status, 302, `${p.os}: ${JSON.stringify(a)}`);
      assert.is(a.location, PAY_PAGE, `${p.os}'s probe goes to the pay page`);
    }
    const https = await probe(c, 'https://upstream.lab/');
    // curl's 7: the connection was refused (the gate's reset), not timed out (28).
    assert.is(https.exit, 7, `HTTPS: ${JSON.stringify(https)}`);
    figure(`unpaid: 5 probes → 302 ${PAY_PAGE}; HTTPS reset after ${https.ms} ms`);
    assert.is((await probe(c, `http://${LISTEN}/captive`)).status, 200, 'the captive API answers');
    assert.is((await probe(c, 'http://[fd77:1::2]/', 'curl', ['-6'])).status, 0, 'no IPv6 to the upstream');
    const ping = await run('ip', ['netns', 'exec', c.ns, 'busybox', 'ping', '-c', '1', '-W', '1', '10.77.1.2']);
    assert.is.not(ping.code, 0, 'no ICMP to the upstream');
  },
);

scenario('2 a grant opens the gate by the time it answers; the probes get their real answers', pre.daemon, async () => {
  const c = L().client(1);
  const started = Date.now();
  await S().call('grant', { mac: c.mac, seconds: 600 });
  const answered = Date.now() - started;
  // No wait: the gate is open when the grant answers.
  assert.ok(await passes(c), 'passes right after the grant answered');
  for (const p of PROBES) assert.is((await probe(c, p.url, p.agent)).status, p.ok, p.os);
  assert.is((await probe(c, `http://[${UPSTREAM6}]/`, 'curl', ['-6'])).status, 200, 'its IPv6 passes');
  assert.not.ok(await passes(L().client(2)), 'another device stays out');
  const set = await nft(['list', 'set', 'inet', 'sluice_portal', 'paid']);
  assert.ok(set.includes(`${c.mac} . ${c.ip}`), `bound by MAC and address: ${set}`);
  figure(`grant answered in ${answered} ms, the gate open then`);
});

scenario('3 a data grant is cut by the kernel at its allotment', pre.daemon, async () => {
  const c = L().client(2);
  await S().call('grant', { mac: c.mac, bytes: 1 * MiB });
  const got = await run(
    'ip',
    [
      ...['netns', 'exec', c.ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '15'],
      ...['-w', '%{size_download}', 'http://upstream.lab/bytes/8388608'],
    ],
    30_000,
  );
  const bytes = Number(got.stdout.trim());
  assert.ok(bytes < 1.2 * MiB, `cut near 1 MiB: got ${bytes}`);
  await S().waitSession(c.mac, 'the session to end', 15_000, (s) => s.state !== 'ACTIVE');
  assert.not.ok(await passes(c), 'closed after its allotment');
  figure(`data grant of 1 MiB: the download stopped at ${bytes} B`);
});

scenario('4 a terminate closes the gate: the open connection is reset at its next packet', pre.daemon, async () => {
  const c = L().client(1);
  // An upload that runs on: the client sends, as a browser does. 8 Mbit/s up for 20 s is more than it can finish.
  const upload = spawn('ip', [
    ...['netns', 'exec', c.ns, 'sh', '-c'],
    'head -c 50000000 /dev/zero | curl -s -o /dev/null --max-time 30 --limit-rate 200k -w "%{http_code}" ' +
      '-X POST -T - http://upstream.lab/upload; echo " $?"',
  ]);
  let out = '';
  upload.stdout.on('data', (d) => (out += d));
  const ended = new Promise<void>((r) => upload.on('close', () => r()));
  await sleep(1500);
  const at = Date.now();
  await S().call('terminate', { mac: c.mac });
  await ended;
  const took = Date.now() - at;
  const exit = Number(out.trim().split(' ').pop());
  // curl's 55 (send failure) or 56 (receive failure): the connection was reset, not timed out (28).
  assert.ok(exit === 55 || exit === 56, `curl ended with ${out.trim()} after ${took} ms`);
  assert.is((await probe(c, PROBES[0].url)).status, 302, 'back to the pay page');
  figure(`terminate: the open upload was reset ${took} ms later (curl exit ${exit})`);
});

/**
 * Client 1 downloads (`--limit-rate` as a slow reader, else as fast as it can) and is terminated once it has 200 kB:
 * how curl ended (its exit: 56 reset, 28 its own timeout), when, and the bytes that reached it after the close.
 */
async function downloadCut(limit: string[]): Promise<{ exit: number; took: number; after: number }> {
  const c = L().client(1);
  await S().call('grant', { mac: c.mac, seconds: 600 });
  const download = spawn('ip', [
    ...['netns', 'exec', c.ns, 'sh', '-c'],
    `curl -s -o /dev/null --max-time 12 ${limit.join(' ')} http://upstream.lab/bytes/60000000; echo " $?"`,
  ]);
  let out = '';
  download.stdout.on('data', (d) => (out += d));
  const ended = new Promise<void>((r) => download.on('close', () => r()));
  const before = await L().clientIpBytes(c);
  await waitFor('the download under way', 10_000, async () =>
    (await L().clientIpBytes(c)) - before > 200_000 ? true : undefined,
  );
  const at = Date.now();
  await S().call('terminate', { mac: c.mac });
  const cut = await L().clientIpBytes(c);
  await ended;
  return { exit: Number(out.trim()), took: Date.now() - at, after: (await L().clientIpBytes(c)) - cut };
}

scenario(
  '4b a terminate cuts a download the device only receives: no more than what was in flight reaches it',
  pre.daemon,
  async () => {
    const said = (what: string, r: { exit: number; took: number; after: number }): string =>
      `download-only, ${what}: curl exit ${r.exit} ${r.took} ms after the terminate, ${r.after} B after the close`;
    // A slow reader (a video player): its next window update after the close meets the gate's reset.
    const slow = await downloadCut(['--limit-rate', '100k']);
    figure(said('slow reader', slow));
    assert.ok(slow.after < 64 * 1024, `${slow.after} B reached the client after the close`);
    assert.is(slow.exit, 56, 'its connection was reset');
    // A fast reader: its bytes stop as well; it is reset at the next ACK it sends (if none, its own timeout ends it).
    const fast = await downloadCut([]);
    figure(said('fast reader', fast));
    assert.ok(fast.after < 64 * 1024, `${fast.after} B reached the client after the close`);
  },
);

scenario(
  '5 killed with -9: the paid pass, the unpaid stay out; the restart squares it with the journal',
  pre.daemon,
  async () => {
    const paid = L().client(3);
    await S().call('grant', { mac: paid.mac, seconds: 600 });
    assert.ok(await passes(paid));
    await S().kill9();
    assert.ok(await passes(paid), 'the paid pass while sluice is down');
    assert.not.ok(await passes(L().client(1)), 'the unpaid stay out');
    // A device the set holds without a session (its session ended while sluice was down, or anything an earlier run
    // left): the restart closes it.
    await nft(['add', 'element', 'inet', 'sluice_portal', 'paid', `{ ${L().client(1).mac} . ${L().client(1).ip} }`]);
    await S().startDaemon();
    assert.ok(await passes(paid), 'still passing after the restart');
    await waitFor('the restart to close the stray', 15_000, async () =>
      (await passes(L().client(1))) ? undefined : true,
    );
  },
);

scenario('6 nft flush ruleset: the gate is back within a second, the paid still pass', pre.daemon, async () => {
  await nft(['flush', 'ruleset']);
  const flushed = Date.now();
  await waitFor(
    'the gate back',
    10_000,
    async () =>
      (await nft(['list', 'set', 'inet', 'sluice_portal', 'paid'])).includes(L().client(3).mac) ? true : undefined,
    50,
  );
  const back = Date.now() - flushed;
  figure(
    `nft flush ruleset: the gate back after ${back} ms (load ${(await import('node:os')).loadavg()[0]!.toFixed(1)})`,
  );
  assert.ok(await passes(L().client(3)), 'the paid device passes');
  assert.is((await probe(L().client(1), PROBES[1].url, PROBES[1].agent)).status, 302, 'the unpaid meet the pay page');
});

scenario(
  "7 fw4 flush then fw4's include (every table deleted, the gate made again with an empty set): the paid pass again",
  pre.daemon,
  async () => {
    const paid = L().client(3);
    assert.ok(await passes(paid));
    // What `fw4 flush` + `fw4 start` (a firewall restart after a flush) does to sluice's gate: every table goes, then
    // fw4's ruleset brings the include, <state_dir>/gate.nft, before the daemon can see the table missing.
    const include = join(S().dir, 'state', 'gate.nft');
    const r = await run('ip', ['netns', 'exec', L().rtNs, 'sh', '-c', `nft flush ruleset && nft -f '${include}'`]);
    assert.is(r.code, 0, r.stderr);
    const flushed = Date.now();
    await waitFor('the paid device passing again', 10_000, async () => ((await passes(paid)) ? true : undefined), 50);
    const load = (await import('node:os')).loadavg()[0]!.toFixed(1);
    figure(`fw4 flush + include: the paid device passed again after ${Date.now() - flushed} ms (load ${load})`);
    assert.is((await probe(L().client(1), PROBES[1].url, PROBES[1].agent)).status, 302, 'the unpaid meet the pay page');
  },
);

test.run();
