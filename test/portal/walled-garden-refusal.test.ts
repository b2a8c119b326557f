// tier: fast
/**
 * What the walled garden never opens (portal/walled-garden-refusal.ts): private, carrier-grade NAT, link-local,
 * unique-local, loopback, multicast and unspecified addresses, the router's own addresses and the subnets it is on.
 * Then, as root, the keeper (portal/walled-garden.ts) resolving through a real dnsmasq and writing the real nft set in
 * a network namespace: names resolving to 192.168.1.1, to 10.x, to the router's own public address and into its
 * subnet never enter the set, and each is logged once with its name; the public name's address does.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gardenRefusal, NEVER_OPENED, type OwnNetworks } from '../../src/portal/walled-garden-refusal.ts';
import { systemLookup, WalledGarden } from '../../src/portal/walled-garden.ts';
import { createLogger } from '../../src/log.ts';
import { freePort } from '../helpers/net.ts';
import { testNeeding } from '../helpers/skip.ts';

const OWN: OwnNetworks = {
  addresses: ['203.0.113.1', '2001:db8:1::1'],
  subnets: ['203.0.113.1/24', '2001:db8:1::1/64'],
};

test('private, CGNAT, link-local, ULA, loopback, multicast and unspecified addresses are refused', () => {
  const refused = [
    ...['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.254', '127.0.0.1'],
    ...['169.254.1.1', '224.0.0.251', '239.255.255.250', '255.255.255.255', '0.0.0.0', '::', '::1', 'fc00::1'],
    ...['fd77::1', 'fe80::1', 'febf::1', 'ff02::1', '::ffff:192.168.1.1', '::ffff:10.0.0.1'],
  ];
  for (const a of refused) assert.ok(gardenRefusal(a, { addresses: [], subnets: [] }), `${a} is refused`);
  for (const a of ['1.1.1.1', '100.63.255.255', '100.128.0.1', '172.32.0.1', '192.0.2.1', '2001:db8::1', 'fec0::1'])
    assert.is(gardenRefusal(a, { addresses: [], subnets: [] }), undefined, `${a} may enter`);
  assert.ok(NEVER_OPENED.length >= 14);
  assert.is(gardenRefusal('not-an-address', OWN), 'not an address');
});

test("the router's own addresses and subnets are refused, whatever range they are in", () => {
  assert.is(gardenRefusal('203.0.113.1', OWN), "the router's own address");
  assert.match(gardenRefusal('203.0.113.77', OWN)!, /own network/);
  assert.match(gardenRefusal('2001:db8:1::99', OWN)!, /own network/);
  assert.is(gardenRefusal('203.0.114.1', OWN), undefined);
  assert.is(gardenRefusal('2001:db8:2::1', OWN), undefined);
});

test('the keeper: refused answers never reach the set, each logged once with its name; literals too', async () => {
  const scripts: string[] = [];
  const lines: string[] = [];
  const garden = new WalledGarden({
    nft: async (_args, stdin) => {
      scripts.push(stdin);
      return '';
    },
    lookup: async (host, family) =>
      family === 6
        ? [{ address: 'fe80::1', ttl: 60 }]
        : host === 'lan.example'
          ? [{ address: '192.168.1.1', ttl: 60 }]
          : [
              { address: '198.51.100.7', ttl: 60 },
              { address: '203.0.113.1', ttl: 60 },
            ],
    log: createLogger({ write: (_level, line) => void lines.push(line) }),
    ownNetworks: () => OWN,
  });
  const target = {
    hosts: ['lan.example', 'mint.example', '10.0.0.5', '198.51.100.9'],
    ports: [443],
    devices: ['br-lan'],
  };
  await garden.follow(target);
  await garden.follow(target);
  assert.match(scripts[0]!, /v4 \{ 198\.51\.100\.7, 198\.51\.100\.9 \}/);
  // What sluice's own sets open (the never4/never6 sets name the refused ranges, by design).
  const opened = scripts[0]!.split('\n').filter((l) => /^add element inet sluice_garden v[46] /.test(l));
  assert.not.match(opened.join('\n'), /192\.168|203\.0\.113|10\.0\.0\.5|fe80/);
  const refused = lines.filter((l) => l.includes('walled garden: address refused'));
  assert.is(refused.length, 5, refused.join('\n'));
  assert.ok(refused.some((l) => /host=lan\.example.*address=192\.168\.1\.1.*RFC 1918/.test(l)));
  assert.ok(refused.some((l) => /host=mint\.example.*address=203\.0\.113\.1.*own address/.test(l)));
  assert.ok(refused.some((l) => /host=10\.0\.0\.5.*address=10\.0\.0\.5/.test(l)));
  await garden.close();
});

/** A dnsmasq on the host's loopback answering the lab's names (as the router's resolver does). */
async function startDnsmasq(names: Record<string, string[]>): Promise<{ server: string; stop: () => void }> {
  const port = await freePort();
  const args = ['-k', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces'];
  args.push('--listen-address=127.0.0.1', `--port=${port}`, '--log-facility=-', '--pid-file=');
  for (const [name, addresses] of Object.entries(names))
    for (const a of addresses) args.push(`--host-record=${name},${a}`);
  const child = spawn('dnsmasq', args, { stdio: 'ignore' });
  const server = `127.0.0.1:${port}`;
  const lookup = systemLookup(1000, [server]);
  for (let i = 0; i < 100; i++) {
    if ((await lookup('public.test', 4).catch(() => [])).length > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { server, stop: () => child.kill('SIGTERM') };
}

testNeeding(
  test,
  ['root', 'nft', 'dnsmasq'],
  'real dnsmasq and nft: LAN, private and router names never enter the set',
  async () => {
    const ns = `sl-wgr-${randomBytes(3).toString('hex')}`;
    assert.is(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    const inNs = (...argv: string[]) => spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
    const dns = await startDnsmasq({
      'public.test': ['198.51.100.7'],
      'lan.test': ['192.168.1.1'],
      'ten.test': ['10.77.0.1'],
      'router.test': ['203.0.113.1'],
      'neighbour.test': ['203.0.113.50'],
      'mixed.test': ['198.51.100.8', '10.1.1.1'],
    });
    try {
      // The router: a LAN bridge on a public-looking subnet, so only "its own" refuses 203.0.113.x.
      assert.is(inNs('ip', 'link', 'add', 'br-lan', 'type', 'bridge').status, 0);
      assert.is(inNs('ip', 'addr', 'add', '203.0.113.1/24', 'dev', 'br-lan').status, 0);
      const own = (): OwnNetworks => {
        const listed = JSON.parse(inNs('ip', '-j', 'addr').stdout) as {
          addr_info: { local: string; prefixlen: number }[];
        }[];
        const info = listed.flatMap((l) => l.addr_info);
        return { addresses: info.map((a) => a.local), subnets: info.map((a) => `${a.local}/${a.prefixlen}`) };
      };
      const lines: string[] = [];
      const garden = new WalledGarden({
        nft: async (args, stdin) => {
          const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { input: stdin, encoding: 'utf8' });
          if (r.status !== 0) throw new Error(r.stderr);
          return r.stdout;
        },
        lookup: systemLookup(1000, [dns.server]),
        log: createLogger({ write: (_level, line) => void lines.push(line) }),
        ownNetworks: own,
      });
      const hosts = ['public.test', 'lan.test', 'ten.test', 'router.test', 'neighbour.test', 'mixed.test'];
      await garden.follow({ hosts, ports: [443, 80], devices: ['br-lan'] });
      const set = inNs('nft', '-j', 'list', 'set', 'inet', 'sluice_garden', 'v4').stdout;
      const elements = (JSON.parse(set) as { nftables: { set?: { elem?: string[] } }[] }).nftables.flatMap(
        (o) => o.set?.elem ?? [],
      );
      assert.equal(elements.sort(), ['198.51.100.7', '198.51.100.8']);
      const refused = lines.filter((l) => l.includes('walled garden: address refused'));
      for (const [host, address] of [
        ['lan.test', '192.168.1.1'],
        ['ten.test', '10.77.0.1'],
        ['router.test', '203.0.113.1'],
        ['neighbour.test', '203.0.113.50'],
        ['mixed.test', '10.1.1.1'],
      ])
        assert.ok(
          refused.some((l) => l.includes(`host=${host}`) && l.includes(`address=${address}`)),
          `${host} → ${address} logged: ${refused.join('\n')}`,
        );
      await garden.close();
    } finally {
      dns.stop();
      spawnSync('ip', ['netns', 'del', ns]);
    }
  },
);

test.run();
