// tier: fast
/**
 * sluice's own gate (`main.portal 'sluice'`) off the kernel: its nft script, the gate's state over a recording nft,
 * the ndsctl protocol it answers on its socket (through the valve's own socket transport), what the config makes of
 * `portal 'sluice'`, and the LAN endpoint's redirect of a request meant for another host. The kernel side runs in
 * test/e2e/sluice-gate.test.ts.
 */
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { SluiceBackend } from '../../src/api/index.ts';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { HttpEndpoint } from '../../src/http/server.ts';
import { Valve } from '../../src/portal/index.ts';
import { OwnGate } from '../../src/portal/own-gate.ts';
import { ownCloseScript, ownGateScript, parsePaidSets } from '../../src/portal/own-gate-nft.ts';
import { gateAnswer, OwnGateServer, parseRequest } from '../../src/portal/own-gate-server.ts';

const test = suite('own gate');
const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';
const ARP = [
  'IP address       HW type     Flags       HW address            Mask     Device',
  `10.77.0.101      0x1         0x2         ${A}     *        br-lan`,
  `10.77.0.102      0x1         0x2         ${B}     *        br-lan`,
  `10.77.0.150      0x1         0x0         ${B}     *        br-lan`,
].join('\n');
const RULESET = { devices: ['br-lan'], http: { host: '10.77.0.1', port: 2122 }, tcpPorts: [22, 2121] };

function rig(arp = ARP) {
  const scripts: string[] = [];
  let table = arp;
  const gate = new OwnGate({
    ruleset: RULESET,
    run: async (args, stdin) => {
      if (args[0] === '-j') return '';
      scripts.push(stdin);
      return '';
    },
    neighbours: async () => table,
    now: () => 1_800_000_000,
  });
  return { gate, scripts, setArp: (t: string) => (table = t) };
}

test('the script keeps the sets it finds, sends unpaid HTTP to the endpoint and resets the rest', () => {
  const s = ownGateScript({ ...RULESET, paid: [{ mac: A, ips: ['10.77.0.101'] }] });
  assert.not.match(s, /delete table|flush ruleset|flush set inet sluice_portal paid/, 'an earlier run’s paid stay');
  assert.match(s, `add element inet sluice_portal paid { ${A} . 10.77.0.101 }`);
  assert.match(s, 'tcp dport 80 dnat ip to 10.77.0.1:2122');
  assert.match(s, 'add element inet sluice_portal router_tcp { 22, 53, 2121, 2122 }');
  assert.match(s, 'meta l4proto tcp reject with tcp reset');
  assert.match(ownGateScript({ ...RULESET, http: { host: 'fd77::1', port: 2122 } }), 'tcp dport 80 redirect to :2122');
  const close = ownCloseScript({ mac: A, ips: ['10.77.0.101'] });
  assert.ok(close.indexOf('add element') < close.indexOf('delete element'), 'a close of a gone element fails nothing');
});

test('an earlier run’s set is read back as devices with their addresses', () => {
  const pairs = JSON.stringify({
    nftables: [{ metainfo: {} }, { set: { elem: [{ concat: [A, '10.77.0.101'] }, { concat: [A, '10.77.0.9'] }] } }],
  });
  const macs = JSON.stringify({ nftables: [{ set: { elem: [A, B] } }] });
  assert.equal(parsePaidSets(pairs, macs), [
    { mac: A, ips: ['10.77.0.101', '10.77.0.9'] },
    { mac: B, ips: [] },
  ]);
  assert.equal(parsePaidSets('not json', ''), []);
});

test('an auth binds the MAC to its resolved addresses; a new address shows it Preauthenticated there', async () => {
  const { gate, scripts, setArp } = rig();
  assert.ok(await gate.auth(A));
  assert.match(scripts.at(-1)!, `paid { ${A} . 10.77.0.101 }`);
  assert.ok(await gate.auth(B));
  assert.not.match(scripts.at(-1)!, '10.77.0.150', 'an unresolved entry is not bound');
  assert.not.ok(await gate.auth(A), 'already open on every address it has: no');
  assert.not.ok(await gate.auth('02:00:00:00:0c:09'), 'no address: no');
  let listed = JSON.parse(await gate.listing());
  assert.is(listed.client_list_length, '2');
  assert.is(listed.clients[A].state, 'Authenticated');
  assert.is(listed.clients[A].ip, '10.77.0.101');
  setArp(`${ARP}\n10.77.0.111      0x1         0x2         ${A}     *        br-lan`);
  listed = JSON.parse(await gate.listing());
  assert.is(listed.clients[A].state, 'Preauthenticated', 'seen on an address its gate lacks');
  assert.is(listed.clients[A].ip, '10.77.0.111');
  assert.ok(await gate.auth(A), 'the auth adds the new address');
  assert.match(scripts.at(-1)!, `${A} . 10.77.0.111`);
  assert.is(JSON.parse(await gate.lookup(A)).state, 'Authenticated');
  const token = JSON.parse(await gate.lookup(A)).token as string;
  assert.match(token, /^[0-9a-f]{8}$/);
  assert.is(JSON.parse(await gate.lookup(token)).mac, A, 'by its token');
  assert.is(JSON.parse(await gate.lookup('10.77.0.102')).mac, B, 'by its address');
  assert.ok(await gate.deauth(A));
  assert.match(scripts.at(-1)!, `delete element inet sluice_portal paid_mac { ${A} }`);
  assert.not.ok(await gate.deauth(A), 'not open: no');
  assert.is(JSON.parse(await gate.lookup(A)).state, 'Preauthenticated');
  assert.is(await gate.lookup('02:00:00:00:0c:09'), '{}');
});

test('the valve drives it over its socket as it drives openNDS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'own-gate-'));
  const { gate } = rig();
  const server = await OwnGateServer.listen(join(dir, 'gate.sock'), gateAnswer(gate));
  const valve = new Valve({ command: ['/nonexistent'], socketPath: () => server.path, flavour: 'opennds' });
  try {
    assert.is(await valve.open(A), 'opened');
    assert.is(await valve.open(A), 'already-open');
    const snap = await valve.snapshot();
    assert.equal(
      snap.clients.map((c) => [c.mac, c.state, c.ip]),
      [[A, 'Authenticated', '10.77.0.101']],
    );
    assert.is(await valve.close(A), 'closed');
    assert.is(await valve.close(A), 'not-found');
    const unknown = await valve.open('02:00:00:00:0c:09').catch((err: Error) => err.message);
    assert.match(String(unknown), /has not seen/, `no resolved address: the gate waits for the device (${unknown})`);
    assert.equal(parseRequest('auth 02:00:00:00:0c:01,600,0\r\n\r\n'), { cmd: 'auth', args: [A, '600', '0'] });
  } finally {
    await valve.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("portal 'sluice': kernel counting on, the LAN endpoint at the quickstart's address unless set", () => {
  const PLAN = "config pricing 'data'\n\toption metric 'bytes'\n\toption step_size '1'\n\toption price_per_step '1'\n";
  const read = (main: string, http = '') =>
    configFromUciPartial(parseUci(`config sluice 'main'\n${main}${PLAN}${http}`), { hostname: 'r' });
  const own = read("\toption portal 'sluice'\n");
  assert.is(own.config.main.portal, 'sluice');
  assert.is(own.config.main.kernelQuota, true);
  assert.equal([own.config.http.host, own.config.http.port], ['192.168.1.1', 2122]);
  const set = read("\toption portal 'sluice'\n", "config http 'http'\n\toption listen '10.0.0.1:8080'\n");
  assert.equal([set.config.http.host, set.config.http.port], ['10.0.0.1', 8080]);
  const off = read("\toption portal 'sluice'\n\toption kernel_quota '0'\n");
  assert.is(off.config.main.kernelQuota, true, 'no gate without its counters');
  assert.ok(off.problems.some((p) => p.path === 'main.kernel_quota'));
  assert.is(read("\toption portal 'opennds'\n").config.http.host, '', 'openNDS: the endpoint stays off unless set');
});

test('the endpoint answers a request meant for another host with a 302 to the pay page', async () => {
  const backend = { now: () => 0, pricing: () => [], session: () => undefined } as unknown as SluiceBackend;
  const endpoint = await HttpEndpoint.start({
    ...{ host: '127.0.0.1', port: 0, rateLimitPerMinute: 1, backend, macOf: async () => A },
    answerProbes: true,
  });
  const get = (host: string, path: string) =>
    new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      request({ host: '127.0.0.1', port: endpoint.port, path, headers: { host }, agent: false }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: res.headers.location });
      })
        .on('error', reject)
        .end();
    });
  try {
    const page = `http://127.0.0.1:${endpoint.port}/portal`;
    for (let i = 0; i < 3; i++) {
      // Past the rate limit of 1 a minute: a probe is answered anyway.
      assert.equal(await get('connectivitycheck.gstatic.com', '/generate_204'), { status: 302, location: page });
    }
    assert.equal(await get('captive.apple.com', '/hotspot-detect.html'), { status: 302, location: page });
    assert.is((await get(`127.0.0.1:${endpoint.port}`, '/captive')).status, 200, 'its own address: served');
  } finally {
    await endpoint.close();
  }
});

test.run();
