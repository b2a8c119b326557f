// tier: daemon
/**
 * The walled garden's names handed to the real dnsmasq (portal/garden-dnsmasq.ts), as root in network namespaces: the
 * router's dnsmasq (2.87+, `nftset`) forwards to an upstream that answers `public.test` with a public test address and
 * `lan.test` with 192.168.1.1. A client's lookups put both answers in the garden's dnsmasq set; the garden's chain
 * marks the client's packet to the public one as the portal's trusted traffic and not the one to 192.168.1.1 (the
 * kernel refuses what walled-garden-refusal.ts refuses); and the garden rewritten by sluice (a reload that changes
 * its hosts) keeps what dnsmasq added. The conf file's lines and the keeper's writes and restarts are checked without
 * root.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { GardenDnsmasq, gardenNftsetConf, GARDEN_DNSMASQ_FILE } from '../../src/portal/garden-dnsmasq.ts';
import { WalledGarden } from '../../src/portal/walled-garden.ts';
import { nftRunner } from '../../src/portal/nft-run.ts';
import { createLogger } from '../../src/log.ts';
import { skipTest } from '../helpers/skip.ts';

const log = createLogger({ write: () => undefined });
const PUBLIC = '198.51.100.7';
const PRIVATE = '192.168.1.1';

test('one nftset line a name, into both dnsmasq sets; addresses and bad names left out', () => {
  const conf = gardenNftsetConf(['Mint.Example', '198.51.100.9', '2001:db8::1', 'bad name/x', 'mint.example', 'a.b']);
  assert.equal(
    conf.split('\n').filter((l) => !l.startsWith('#')),
    [
      'nftset=/mint.example/4#inet#sluice_garden#dns4,6#inet#sluice_garden#dns6',
      'nftset=/a.b/4#inet#sluice_garden#dns4,6#inet#sluice_garden#dns6',
      '',
    ],
  );
  assert.is(gardenNftsetConf(['198.51.100.9']), '', 'no name: no file');
});

test('the keeper writes each conf-dir, restarts dnsmasq on a change only, removes the file at no name', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sl-garden-dnsmasq-'));
  try {
    const dirs = [join(root, 'dnsmasq.d'), join(root, 'dnsmasq.cfg01411c.d')];
    for (const d of dirs) mkdirSync(d);
    let restarts = 0;
    let nftset = true;
    const keeper = new GardenDnsmasq({
      ...{ confDirs: () => dirs, restart: async () => void restarts++, log },
      hasNftset: async () => nftset,
    });
    await keeper.follow(['mint.example']);
    for (const d of dirs) assert.match(readFileSync(join(d, GARDEN_DNSMASQ_FILE), 'utf8'), /nftset=\/mint\.example\//);
    assert.is(restarts, 1);
    await keeper.follow(['mint.example']);
    assert.is(restarts, 1, 'unchanged: no restart');
    await keeper.follow([]);
    assert.is(restarts, 2);
    for (const d of dirs) assert.not.ok(existsSync(join(d, GARDEN_DNSMASQ_FILE)));
    // A dnsmasq without nftset would refuse to start with the file: none is written.
    nftset = false;
    const plain = new GardenDnsmasq({
      confDirs: () => dirs,
      restart: async () => void restarts++,
      log,
      hasNftset: async () => nftset,
    });
    await plain.follow(['mint.example']);
    for (const d of dirs) assert.not.ok(existsSync(join(d, GARDEN_DNSMASQ_FILE)));
    assert.is(restarts, 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

const why =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : spawnSync('dnsmasq', ['--version']).status !== 0
      ? 'needs dnsmasq'
      : !String(spawnSync('dnsmasq', ['--version']).stdout).includes(' nftset')
        ? 'needs a dnsmasq built with nftset'
        : null;

if (why !== null) skipTest(test, 'real dnsmasq fills the garden', why, { ciInstalls: true });
else
  test('real dnsmasq fills the garden; a private answer opens nothing; a rewrite keeps what it added', async () => {
    const id = randomBytes(3).toString('hex');
    const rt = `sl-gd-${id}-rt`;
    const client = `sl-gd-${id}-c`;
    const dir = mkdtempSync(join(tmpdir(), 'sl-garden-dnsmasq-'));
    const daemons: ChildProcess[] = [];
    let garden: WalledGarden | undefined;
    // Each command bounded: a lookup of a resolver not up yet would wait for busybox's own retries.
    const sh = (ns: string, cmd: string, ...args: string[]) =>
      spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 5000 });
    const ok = (r: ReturnType<typeof sh>, what: string) => assert.is(r.status, 0, `${what}: ${r.stderr}`);
    try {
      for (const ns of [rt, client]) ok(spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' }), ns);
      ok(sh(rt, 'ip', 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client), 'veth');
      ok(sh(rt, 'ip', 'addr', 'add', '10.99.0.1/24', 'dev', 'lan'), 'router address');
      for (const [ns, dev] of [
        [rt, 'lan'],
        [rt, 'lo'],
        [client, 'eth0'],
        [client, 'lo'],
      ] as const)
        ok(sh(ns, 'ip', 'link', 'set', dev, 'up'), `${ns} ${dev} up`);
      ok(sh(client, 'ip', 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0'), 'client address');
      ok(sh(client, 'ip', 'route', 'add', 'default', 'via', '10.99.0.1'), 'client route');

      // sluice's garden, as the daemon keeps it: resolving nothing itself, so what is opened is dnsmasq's doing.
      garden = new WalledGarden({
        nft: nftRunner(['ip', 'netns', 'exec', rt, 'nft'], 5000),
        lookup: async () => [],
        log,
        ownNetworks: () => ({ addresses: ['10.99.0.1'], subnets: ['10.99.0.0/24'] }),
      });
      const hosts = ['public.test', 'lan.test'];
      await garden.follow({ hosts, ports: [443], devices: ['lan'] });
      // What reaches the router's prerouting after the garden's chain, marked as the portal's trusted traffic or not.
      const probe = [
        'table inet probe {',
        '  counter public_marked {}',
        '  counter private_marked {}',
        '  counter private_seen {}',
        '  chain pre {',
        '    type filter hook prerouting priority -148; policy accept;',
        `    ip daddr ${PUBLIC} meta mark & 0x30700 == 0x20200 counter name public_marked`,
        `    ip daddr ${PRIVATE} counter name private_seen`,
        `    ip daddr ${PRIVATE} meta mark & 0x30700 == 0x20200 counter name private_marked`,
        '  }',
        '}',
        '',
      ].join('\n');
      ok(spawnSync('ip', ['netns', 'exec', rt, 'nft', '-f', '-'], { input: probe, encoding: 'utf8' }), 'probe table');

      // The upstream resolver and the router's dnsmasq with the file the keeper writes.
      const confDir = join(dir, 'dnsmasq.d');
      mkdirSync(confDir);
      await new GardenDnsmasq({ confDirs: () => [confDir], restart: async () => undefined, log }).follow(hosts);
      assert.ok(existsSync(join(confDir, GARDEN_DNSMASQ_FILE)), "this dnsmasq's --version says nftset");
      const start = (args: string[]) => {
        const p = spawn('ip', ['netns', 'exec', rt, 'dnsmasq', '--keep-in-foreground', '--no-hosts', ...args], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        daemons.push(p);
        return p;
      };
      let upstreamErr = '';
      start([
        '--conf-file=/dev/null',
        '--no-resolv',
        '--listen-address=127.0.0.2',
        '--bind-interfaces',
        '--log-facility=-',
        `--address=/public.test/${PUBLIC}`,
        `--address=/lan.test/${PRIVATE}`,
      ]).stderr?.on('data', (d) => (upstreamErr += d));
      // The upstream answers before the router's dnsmasq forwards to it: queries it forwarded to a port nobody had
      // bound yet stay unanswered until dnsmasq's own timeout, and a loaded machine's slow start filled its 150.
      const upstreamAnswers = () => sh(rt, 'busybox', 'nslookup', 'public.test', '127.0.0.2').stdout.includes(PUBLIC);
      for (let i = 0; i < 100 && !upstreamAnswers(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(upstreamAnswers(), `the upstream resolver answers: ${upstreamErr}`);
      let stderr = '';
      start([
        `--conf-file=${join(confDir, GARDEN_DNSMASQ_FILE)}`,
        '--no-resolv',
        '--server=127.0.0.2',
        '--listen-address=10.99.0.1',
        '--bind-interfaces',
        '--log-facility=-',
      ]).stderr?.on('data', (d) => (stderr += d));
      const set = () => sh(rt, 'nft', 'list', 'set', 'inet', 'sluice_garden', 'dns4').stdout;
      const lookup = (name: string) => sh(client, 'busybox', 'nslookup', name, '10.99.0.1');
      for (let i = 0; i < 50 && !(set().includes(PUBLIC) && set().includes(PRIVATE)); i++) {
        lookup('public.test');
        lookup('lan.test');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(set().includes(PUBLIC), `dnsmasq added the public answer: ${set()} ${stderr} upstream: ${upstreamErr}`);
      assert.ok(set().includes(PRIVATE), `dnsmasq adds a private answer too (the chain refuses it): ${set()}`);

      // The client's TCP to each (nothing answers: the SYN through prerouting is what is looked at).
      for (const to of [PUBLIC, PRIVATE])
        sh(client, 'curl', '-s', '-o', '/dev/null', '--max-time', '1', '--connect-timeout', '1', `http://${to}:443/`);
      const counter = (name: string) =>
        Number(/packets (\d+)/.exec(sh(rt, 'nft', 'list', 'counter', 'inet', 'probe', name).stdout)?.[1] ?? -1);
      assert.ok(counter('public_marked') > 0, 'the public answer is open to the unpaid client');
      assert.ok(counter('private_seen') > 0, 'the client did try 192.168.1.1');
      assert.is(counter('private_marked'), 0, 'a name resolving to 192.168.1.1 opens nothing');

      // A reload that changes the garden's hosts rewrites sluice's table: dnsmasq's additions stay.
      await garden.follow({ hosts: [...hosts, 'other.test'], ports: [443, 80], devices: ['lan'] });
      assert.ok(set().includes(PUBLIC), `kept over the rewrite: ${set()}`);
    } finally {
      await garden?.close();
      for (const p of daemons) p.kill('SIGKILL');
      for (const ns of [rt, client]) spawnSync('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

test.run();
