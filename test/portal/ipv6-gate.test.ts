// tier: daemon
/**
 * The IPv6 gate (portal/ipv6-gate.ts) against the real kernel, in network namespaces laid out as a dual-stack LAN
 * (ULA addresses, the router forwarding IPv6, no other filter): a client whose gate is closed reaches the router and
 * the walled garden's address on its port, and nothing else upstream, neither by its own connections nor by what an
 * upstream host pushes to it; opened, it reaches everything; closed again, a download already flowing stops. A MAC
 * the portal trusts passes while it is trusted.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipv6Gate } from '../../src/portal/ipv6-gate.ts';
import { nftRunner } from '../../src/portal/nft-run.ts';
import { skipTest } from '../helpers/skip.ts';
import { until } from '../helpers/until.ts';

const MAC = '02:00:00:00:0c:01';
const ROUTER = 'fd77::1';
const UPSTREAM = 'fd77:1::2';
const GARDEN = 'fd77:1::3';
const ROUTER4 = '10.99.0.1';
const UPSTREAM4 = '10.99.1.2';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const root = process.getuid?.() === 0;
const haveNft = spawnSync('nft', ['--version']).status === 0 && spawnSync('curl', ['--version']).status === 0;
if (!root || !haveNft) {
  skipTest(test, 'the IPv6 gate on the real kernel', `needs root, nft and curl (root=${root} nft+curl=${haveNft})`, {
    ciInstalls: true,
  });
} else {
  const id = randomBytes(3).toString('hex');
  const [rt, cl, up] = ['rt', 'c', 'up'].map((n) => `sluice-g6-${id}-${n}`) as [string, string, string];
  const dir = mkdtempSync(join(tmpdir(), 'sluice-g6-'));
  const servers: ChildProcess[] = [];
  const ns = (name: string, ...cmd: string[]): void => void execFileSync('ip', ['netns', 'exec', name, ...cmd]);
  const ip = (name: string, ...args: string[]): void => void execFileSync('ip', ['-n', name, ...args]);
  /** A node HTTP server in a namespace: / answers "ok", /stream sends 1 KiB every 10 ms until the client goes. */
  const serve = (name: string, host: string, port: number): void => {
    const code = `require('http').createServer((q, r) => {
      if (q.url !== '/stream') return r.end('ok');
      const t = setInterval(() => r.write(Buffer.alloc(1024, 120)), 10); r.on('close', () => clearInterval(t));
    }).listen(${port}, '${host}')`;
    servers.push(spawn('ip', ['netns', 'exec', name, process.execPath, '-e', code], { stdio: 'ignore' }));
  };
  /** One GET from the client: the HTTP status, 0 when no answer came. */
  const get = (url: string, maxTime = 4): number => {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', cl, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', String(maxTime), url],
      { encoding: 'utf8' },
    );
    return Number(r.stdout.trim() || 0);
  };
  /** A download from the client, kept running (30 s at most): the child and the bytes it received so far. */
  const stream = (url: string, name: string): { curl: ChildProcess; size: () => number } => {
    const out = join(dir, name);
    const curl = spawn('ip', ['netns', 'exec', cl, 'curl', '-s', '-o', out, '--max-time', '30', url]);
    const size = (): number => {
      try {
        return statSync(out).size;
      } catch {
        return 0;
      }
    };
    return { curl, size };
  };
  const gate = new Ipv6Gate({ run: nftRunner(['ip', 'netns', 'exec', rt, 'nft'], 5000), devices: ['lan'] });

  test.before(async () => {
    for (const n of [rt, cl, up]) {
      execFileSync('ip', ['netns', 'add', n]);
      ip(n, 'link', 'set', 'lo', 'up');
      ns(n, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0');
    }
    ns(rt, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.ip_forward=1');
    ip(rt, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cl);
    ip(rt, 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', up);
    ip(cl, 'link', 'set', 'eth0', 'address', MAC);
    ip(rt, 'addr', 'add', `${ROUTER}/64`, 'dev', 'lan', 'nodad');
    ip(rt, 'addr', 'add', 'fd77:1::1/64', 'dev', 'wan', 'nodad');
    ip(cl, 'addr', 'add', 'fd77::101/64', 'dev', 'eth0', 'nodad');
    ip(up, 'addr', 'add', `${UPSTREAM}/64`, 'dev', 'eth0', 'nodad');
    ip(up, 'addr', 'add', `${GARDEN}/64`, 'dev', 'eth0', 'nodad');
    // IPv4 beside it, with no filter of its own: what a portal whose rules stayed behind (it died) lets through.
    ip(rt, 'addr', 'add', `${ROUTER4}/24`, 'dev', 'lan');
    ip(rt, 'addr', 'add', '10.99.1.1/24', 'dev', 'wan');
    ip(cl, 'addr', 'add', '10.99.0.101/24', 'dev', 'eth0');
    ip(up, 'addr', 'add', `${UPSTREAM4}/24`, 'dev', 'eth0');
    for (const [n, dev] of [
      [rt, 'lan'],
      [rt, 'wan'],
      [cl, 'eth0'],
      [up, 'eth0'],
    ] as const)
      ip(n, 'link', 'set', dev, 'up');
    ip(cl, 'route', 'add', 'default', 'via', ROUTER);
    ip(cl, 'route', 'add', 'default', 'via', ROUTER4);
    ip(up, 'route', 'add', 'fd77::/64', 'via', 'fd77:1::1');
    ip(up, 'route', 'add', '10.99.0.0/24', 'via', '10.99.1.1');
    serve(up, '::', 80);
    serve(up, '::', 8080);
    serve(rt, ROUTER, 80);
    serve(rt, ROUTER4, 80);
    // Before the gate: the dual-stack LAN reaches the upstream over IPv6 (what a client that never paid got).
    await until(() => get(`http://[${UPSTREAM}]/`) === 200, 60_000, 'the upstream answering over IPv6', 100);
    await until(() => get(`http://[${ROUTER}]/`) === 200, 60_000, "the router's own server answering", 100);
  });
  test.after(() => {
    for (const s of servers) s.kill('SIGKILL');
    for (const n of [rt, cl, up]) spawnSync('ip', ['netns', 'del', n]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('closed: the router and the garden on its port, nothing else upstream', async () => {
    assert.ok(await gate.start([]));
    await gate.garden([GARDEN], [80]);
    assert.is(get(`http://[${UPSTREAM}]/`), 0, 'the upstream: refused');
    assert.is(get(`http://[${GARDEN}]/`), 200, "the garden's address on its port");
    assert.is(get(`http://[${GARDEN}]:8080/`), 0, "the garden's address on another port: refused");
    assert.is(get(`http://[${ROUTER}]/`), 200, 'the router itself');
  });

  test('closed: what an upstream host pushes to the client does not arrive', () => {
    // UDP from the upstream to the client's address (a one-way download an accomplice could send), for 2 s.
    const listen = `const s = require('dgram').createSocket('udp6'); let n = 0;
      s.on('message', (m) => (n += m.length));
      s.bind(9000, () => setTimeout(() => { console.log(n); s.close(); }, 3000));`;
    const push = `const s = require('dgram').createSocket('udp6');
      const t = setInterval(() => s.send(Buffer.alloc(1000), 9000, 'fd77::101'), 10);
      setTimeout(() => { clearInterval(t); s.close(); }, 2500);`;
    const r = spawnSync(
      'sh',
      ['-c', `ip netns exec ${cl} "$NODE" -e "$L" & sleep 0.3; ip netns exec ${up} "$NODE" -e "$P"; wait`],
      { encoding: 'utf8', env: { ...process.env, NODE: process.execPath, L: listen, P: push } },
    );
    assert.is(r.stdout.trim(), '0', 'bytes pushed that arrived');
  });

  test('open: everything; closed again, a download already flowing stops', async () => {
    await gate.open(MAC);
    assert.is(get(`http://[${UPSTREAM}]/`), 200);
    const { curl, size } = stream(`http://[${UPSTREAM}]/stream`, 'stream');
    try {
      await until(() => size() >= 32 * 1024, 60_000, 'the stream flowing', 100);
      await gate.close(MAC);
      const atClose = size();
      await sleep(2000);
      // Without the gate ≈ 200 KiB more would have come in those 2 s; what was in flight at the close may still land.
      assert.ok(size() - atClose <= 16 * 1024, `${size() - atClose} bytes arrived after the close`);
      assert.is(get(`http://[${UPSTREAM}]/`), 0, 'a new connection: refused');
    } finally {
      curl.kill('SIGKILL');
    }
    await gate.released(MAC); // the portal answered the deauth
  });

  test('closing: IPv4 stops too, flowing or new, the router still answers; released, IPv4 passes again', async () => {
    await gate.open(MAC);
    assert.is(get(`http://${UPSTREAM4}/`), 200, 'IPv4 before the close');
    const { curl, size } = stream(`http://${UPSTREAM4}/stream`, 'stream4');
    try {
      await until(() => size() >= 32 * 1024, 60_000, 'the IPv4 stream flowing', 100);
      // The portal does not answer (down, dead with its rules in place): only sluice's own stop holds the client.
      await gate.close(MAC);
      assert.ok(gate.isStopped(MAC));
      const atClose = size();
      await sleep(2000);
      assert.ok(size() - atClose <= 16 * 1024, `${size() - atClose} bytes arrived over IPv4 after the close`);
      assert.is(get(`http://${UPSTREAM4}/`), 0, 'a new IPv4 connection upstream: dropped');
      assert.is(get(`http://${ROUTER4}/`), 200, "the router's own page (the portal's splash lives there)");
      assert.is(gate.stats().closing, 1);
    } finally {
      curl.kill('SIGKILL');
    }
    // The portal answered the deauth: its own gate holds the client now, and must be able to show it its splash page.
    await gate.released(MAC);
    assert.is(gate.isStopped(MAC), false);
    assert.is(get(`http://${UPSTREAM4}/`), 200, 'IPv4 after the release (no portal filter in this lab)');
    assert.is(get(`http://[${UPSTREAM}]/`), 0, 'IPv6 stays closed: the gate is');
  });

  test('a stop nobody renews lapses by itself; a close tried again starts it anew', async () => {
    const run = nftRunner(['ip', 'netns', 'exec', rt, 'nft'], 5000);
    const brief = new Ipv6Gate({ run, devices: ['lan'], holdSeconds: 4 });
    assert.ok(await brief.start([MAC]));
    const t0 = Date.now();
    await brief.close(MAC);
    assert.is(get(`http://${UPSTREAM4}/`, 1), 0, 'stopped');
    await sleep(3000 - (Date.now() - t0));
    await brief.close(MAC); // tried again: 4 s from now
    await sleep(5000 - (Date.now() - t0));
    assert.is(get(`http://${UPSTREAM4}/`, 1), 0, 'still stopped 5 s after the first close');
    await until(() => get(`http://${UPSTREAM4}/`, 1) === 200, 60_000, 'the stop lapsing', 100);
    assert.ok(await gate.start([]), "the test's gate back");
  });

  test("a MAC the portal trusts passes without a gate of sluice's; no longer trusted, it stops", async () => {
    assert.is(gate.isOpen(MAC), false);
    assert.is(get(`http://[${UPSTREAM}]/`), 0, 'before: its gate is closed');
    await gate.trusted([MAC.toUpperCase()]);
    assert.is(get(`http://[${UPSTREAM}]/`), 200, 'trusted: as over IPv4');
    assert.is(gate.stats().trusted, 1);
    await gate.trusted([]);
    assert.is(get(`http://[${UPSTREAM}]/`), 0, 'trusted no more');
  });

  test('the table deleted behind sluice: rebuilt with the open clients and the garden', async () => {
    await gate.open(MAC);
    spawnSync('ip', ['netns', 'exec', rt, 'nft', 'delete', 'table', 'netdev', 'sluice_gate']);
    await gate.rebuild('deleted');
    const table = spawnSync('ip', ['netns', 'exec', rt, 'nft', 'list', 'table', 'netdev', 'sluice_gate'], {
      encoding: 'utf8',
    }).stdout;
    assert.match(table, MAC);
    assert.match(table, GARDEN);
    await gate.close(MAC);
    assert.is(get(`http://[${UPSTREAM}]/`), 0);
    assert.is(gate.stats().rebuilds, 1);
  });
}

test.run();
