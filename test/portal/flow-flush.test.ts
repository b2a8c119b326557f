// tier: daemon
/**
 * A closed gate ends its flows (portal/flow-flush.ts): the client's addresses from the neighbour table, and, as root
 * against the real kernel, its conntrack entries deleted both ways by `conntrack -D`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressesOf, flowFlusher, ipv6AddressesOf } from '../../src/portal/flow-flush.ts';
import { skipTest } from '../helpers/skip.ts';
import { silentLogger } from '../../src/log.ts';

const A = '02:00:00:00:0c:01';

test("addressesOf: every IPv4 address of the MAC in /proc/net/arp's text, resolved or not", () => {
  const table = [
    'IP address       HW type     Flags       HW address            Mask     Device',
    '10.77.0.101      0x1         0x2         02:00:00:00:0c:01     *        br-lan',
    '10.77.0.201      0x1         0x0         02:00:00:00:0C:01     *        br-lan',
    '10.77.0.102      0x1         0x2         02:00:00:00:0c:02     *        br-lan',
  ].join('\n');
  assert.equal(addressesOf(table, A), ['10.77.0.101', '10.77.0.201']);
});

test("ipv6AddressesOf: every IPv6 address of the MAC in `ip -6 neigh`'s text", () => {
  const table = [
    'fd77::101 dev br-lan lladdr 02:00:00:00:0c:01 REACHABLE',
    'fe80::1:2 dev br-lan lladdr 02:00:00:00:0C:01 STALE',
    'fd77::102 dev br-lan lladdr 02:00:00:00:0c:02 REACHABLE',
    'fd77::103 dev br-lan FAILED',
  ].join('\n');
  assert.equal(ipv6AddressesOf(table, A), ['fd77::101', 'fe80::1:2']);
});

test('a conntrack that cannot run deletes nothing, and says so once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ff-'));
  const arp = join(dir, 'arp');
  writeFileSync(arp, 'IP address HW type Flags HW address Mask Device\n10.81.0.5 0x1 0x2 ' + A + ' * lan\n');
  const warnings: string[] = [];
  const log = { ...silentLogger, warn: (msg: string) => void warnings.push(msg) };
  const flush = flowFlusher({
    command: [join(dir, 'no-conntrack')],
    neighbours: arp,
    ipv6Neighbours: async () => '',
    log,
  });
  assert.is(await flush(A), 0);
  assert.is(await flush(A), 0);
  assert.equal(warnings, ['conntrack cannot run: a closed gate leaves its flows until they end']);
});

const root = process.getuid?.() === 0;
const haveConntrack = spawnSync('conntrack', ['--version']).status === 0;
if (!root || !haveConntrack) {
  skipTest(test, 'conntrack entries deleted on the real kernel', `needs root and conntrack (root=${root})`, {
    ciInstalls: true,
  });
} else {
  const id = randomBytes(3).toString('hex');
  const [R, C] = [`sluice-ff-${id}-r`, `sluice-ff-${id}-c`];
  const inNs = (ns: string, ...args: string[]): string =>
    execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
  test.before(() => {
    for (const ns of [R, C]) execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', R, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', C]);
    execFileSync('ip', ['-n', C, 'link', 'set', 'eth0', 'address', A]);
    execFileSync('ip', ['-n', R, 'addr', 'add', '10.80.0.1/24', 'dev', 'lan']);
    execFileSync('ip', ['-n', C, 'addr', 'add', '10.80.0.5/24', 'dev', 'eth0']);
    execFileSync('ip', ['-n', R, 'addr', 'add', 'fd80::1/64', 'dev', 'lan', 'nodad']);
    execFileSync('ip', ['-n', C, 'addr', 'add', 'fd80::5/64', 'dev', 'eth0', 'nodad']);
    execFileSync('ip', ['-n', R, 'link', 'set', 'lan', 'up']);
    execFileSync('ip', ['-n', C, 'link', 'set', 'eth0', 'up']);
    // conntrack tracks only where a ruleset hooks it in
    inNs(R, 'nft', 'add table inet t; add chain inet t c { type filter hook input priority 0; ct state new counter; }');
  });
  test.after(() => {
    for (const ns of [R, C]) spawnSync('ip', ['netns', 'del', ns]);
  });

  test("real kernel: the client's conntrack entries are deleted, both ways; another client's stay", async () => {
    inNs(
      C,
      'python3',
      '-c',
      "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.sendto(b'x',('10.80.0.1',9))",
    );
    inNs(
      R,
      'python3',
      '-c',
      "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.sendto(b'x',('10.80.0.77',9))",
    );
    // The same over IPv6 (the client's address from `ip -6 neigh`).
    inNs(
      C,
      'python3',
      '-c',
      "import socket\ns=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\ns.sendto(b'x',('fd80::1',9))",
    );
    inNs(
      R,
      'python3',
      '-c',
      "import socket\ns=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\ns.sendto(b'x',('fd80::77',9))",
    );
    assert.match(inNs(R, 'conntrack', '-L'), /src=10\.80\.0\.5 /, 'the flow is tracked');
    assert.match(inNs(R, 'conntrack', '-L', '-f', 'ipv6'), /src=fd80::5 /, 'the IPv6 flow is tracked');
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ff-'));
    const arp = join(dir, 'arp');
    writeFileSync(arp, inNs(R, 'cat', '/proc/net/arp'));
    const flush = flowFlusher({
      command: ['ip', 'netns', 'exec', R, 'conntrack'],
      neighbours: arp,
      ipv6Neighbours: async () => inNs(R, 'ip', '-6', 'neigh', 'show'),
    });
    assert.ok((await flush(A)) >= 1, 'deleted');
    const left = inNs(R, 'conntrack', '-L');
    assert.not.match(left, /10\.80\.0\.5 /, 'none of the client is left');
    assert.match(left, /dst=10\.80\.0\.77 /, "another destination's stays");
    const left6 = inNs(R, 'conntrack', '-L', '-f', 'ipv6');
    assert.not.match(left6, /fd80::5 /, 'none of its IPv6 flows is left');
    assert.match(left6, /dst=fd80::77 /, "another IPv6 destination's stays");
  });
}

test.run();
