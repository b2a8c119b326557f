// tier: daemon
/**
 * Per-client kernel counters (portal/kernel-counters.ts) and the tick accounting on them (meter/kernel-tick.ts):
 * the dump's parser on nft's own JSON, the epoch rules through the real EpochAccountant and shared table, and, as
 * root, the real nft and kernel in three network namespaces (a client, a router, an upstream): forwarded bytes
 * counted exactly both ways, the router's own packets to the client not counted, counters made again a new epoch.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  COUNTER_TABLE,
  counterTableLines,
  countLines,
  parseCounterDump,
  uncountLines,
} from '../../src/portal/kernel-counters.ts';
import type { KernelReading } from '../../src/portal/counter-dump.ts';
import { EpochAccountant } from '../../src/meter/epochs.ts';
import { accountKernelReadings, type RosterEntry } from '../../src/meter/kernel-tick.ts';
import { createTable, TableView } from '../../src/meter/table.ts';
import { STATE_CODES } from '../../src/portal/index.ts';
import { SluiceError } from '../../src/errors.ts';
import { KernelCounters } from '../../src/portal/kernel-counting.ts';
import { recordingLog } from '../helpers/log.ts';
import { skipTest } from '../helpers/skip.ts';

const A = '02:00:00:00:0c:01';
const B = '02:00:00:00:0c:02';
const AUTH = STATE_CODES.Authenticated;

/** nft 1.0.6's `-j list table` shape, as the root test below reads it from the kernel. */
function dump(
  table: number,
  counters: Array<[name: string, handle: number, bytes: number]>,
  down: Array<[string, string]> = [],
): string {
  return JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { table: { family: 'netdev', name: COUNTER_TABLE, handle: table } },
      ...counters.map(([name, handle, bytes]) => ({
        counter: { family: 'netdev', name, table: COUNTER_TABLE, handle, packets: 0, bytes },
      })),
      { counter: { family: 'netdev', name: 'cu_020000000c09', table: 'other', handle: 40, packets: 1, bytes: 5 } },
      {
        map: {
          family: 'netdev',
          name: 'cdown',
          table: COUNTER_TABLE,
          type: 'ether_addr',
          handle: 9,
          map: 'counter',
          elem: down,
        },
      },
    ],
  });
}

test('the dump: both counters of a client, its map key, an epoch that changes when they are made again', () => {
  const one = parseCounterDump(
    dump(
      3,
      [
        ['cu_020000000c01', 11, 100],
        ['cd_020000000c01', 12, 2000],
        ['cu_020000000c02', 13, 7],
      ],
      [[A, 'cd_020000000c01']],
    ),
  );
  assert.equal(one.length, 1, 'a half pair (B has no download counter) and another table are left out');
  assert.equal({ ...one[0]!, epoch: 0 }, { mac: A, epoch: 0, downBytes: 2000, upBytes: 100, key: A });
  const again = parseCounterDump(
    dump(3, [
      ['cu_020000000c01', 21, 0],
      ['cd_020000000c01', 22, 0],
    ]),
  );
  const otherTable = parseCounterDump(
    dump(4, [
      ['cu_020000000c01', 11, 100],
      ['cd_020000000c01', 12, 2000],
    ]),
  );
  assert.is.not(again[0]!.epoch, one[0]!.epoch, 'counters made again');
  assert.is.not(otherTable[0]!.epoch, one[0]!.epoch, 'the table made again, handles reused');
  assert.is.not(one[0]!.epoch, 0, 'never a portal\'s "no token"');
  for (const bad of ['not json', '{"x":1}']) {
    try {
      parseCounterDump(bad);
      assert.unreachable();
    } catch (err) {
      assert.instance(err, SluiceError);
      assert.is((err as SluiceError).code, 'ERR_KERNEL_QUOTA');
    }
  }
});

/** The main thread's part, reduced: a tick from kernel readings, committed, usage summed per MAC. */
class Harness {
  table = createTable(16);
  tick = 0;
  accountant = new EpochAccountant();
  used = new Map<string, number>();
  run(roster: RosterEntry[], readings: KernelReading[]): void {
    this.accountant.attach(this.table);
    this.accountant.beginTick(++this.tick);
    const r = accountKernelReadings(this.accountant, roster, readings);
    if (this.accountant.tableGrew && this.accountant.currentTable) this.table = this.accountant.currentTable;
    const view = new TableView(this.table);
    for (let k = 0; k < r.count; k++) {
      const mac = view.mac(r.deltas[k * 3]!);
      this.used.set(mac, (this.used.get(mac) ?? 0) + r.deltas[k * 3 + 1]! + r.deltas[k * 3 + 2]!);
    }
    view.commit(this.tick);
  }
  usage(mac: string): number {
    return this.used.get(mac) ?? 0;
  }
}
const reading = (mac: string, epoch: number, down: number, up: number): KernelReading => ({
  mac,
  epoch,
  downBytes: down,
  upBytes: up,
  key: mac,
});

test('accounting: growth billed once; counters made again a new epoch from 0; the portal re-authing is not one', () => {
  const h = new Harness();
  h.run([[A, AUTH]], [reading(A, 7, 1000, 100)]);
  assert.is(h.usage(A), 0, 'a first sighting is the base');
  h.run([[A, AUTH]], [reading(A, 7, 5000, 300)]);
  assert.is(h.usage(A), 4200);
  // The portal re-authed A (a new portal token): the kernel's counters went on, and nothing is billed twice.
  h.run([[A, AUTH]], [reading(A, 7, 5500, 300)]);
  assert.is(h.usage(A), 4700);
  // Counters deleted and made again (a gate closed and opened): a new epoch, every byte of it new.
  h.run([[A, AUTH]], [reading(A, 8, 800, 200)]);
  assert.is(h.usage(A), 5700);
});

test(
  'accounting: a listed client without counters yet is counted from 0 once they exist; one the portal no longer ' +
    'lists departs, and comes back on the same epoch',
  () => {
    const h = new Harness();
    h.run(
      [
        [A, AUTH],
        [B, AUTH],
      ],
      [reading(A, 7, 10, 10)],
    );
    h.run(
      [
        [A, AUTH],
        [B, AUTH],
      ],
      [reading(A, 7, 10, 10), reading(B, 3, 600, 400)],
    );
    assert.is(h.usage(B), 1000, 'counters made after the last reading: every byte is new');
    h.run([[A, AUTH]], [reading(A, 7, 10, 10), reading(B, 3, 900, 400)]);
    assert.is(h.usage(B), 1000, 'not listed: its bytes are not billed (its gate is closed)');
    h.run(
      [
        [A, AUTH],
        [B, AUTH],
      ],
      [reading(A, 7, 10, 10), reading(B, 3, 1000, 400)],
    );
    // Back on the same counters (the portal restarted, or missed it from one list): what they counted meanwhile passed
    // the gate and is billed once; counting them from 0 again billed the first 1000 twice (e2e resilience scenario 8).
    assert.is(h.usage(B), 1400, 'back after absence on the same epoch: it continues');
    h.run([[A, AUTH]], [reading(A, 7, 10, 10)]);
    h.run(
      [
        [A, AUTH],
        [B, AUTH],
      ],
      [reading(A, 7, 10, 10), reading(B, 4, 50, 50)],
    );
    assert.is(h.usage(B), 1500, 'back on counters made again: a new epoch from 0');
  },
);

const root = process.getuid?.() === 0;
const haveNft = spawnSync('nft', ['--version']).status === 0;
const haveIp = spawnSync('ip', ['-V']).status === 0;
if (!root || !haveNft || !haveIp) {
  // CI runs as root with nft and ip installed: a skip there is a failure.
  skipTest(
    test,
    'kernel counters on the real nft',
    `needs root, nft and ip (root=${root} nft=${haveNft} ip=${haveIp})`,
    { ciInstalls: true },
  );
} else {
  const id = randomBytes(3).toString('hex');
  const [C, R, U] = ['c', 'r', 'u'].map((x) => `kc-${id}-${x}`) as [string, string, string];
  const inNs = (ns: string, ...args: string[]): string =>
    execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' });
  const nft = (script: string): void => {
    execFileSync('ip', ['netns', 'exec', R, 'nft', '-f', '-'], { input: script });
  };
  const read = (): KernelReading[] => parseCounterDump(inNs(R, 'nft', '-j', 'list', 'table', 'netdev', COUNTER_TABLE));
  test.before(() => {
    for (const ns of [C, R, U]) execFileSync('ip', ['netns', 'add', ns]);
    // IPv6 off: a link coming up sends router solicitations and reports, which the counters count (IPv6 is a
    // client's traffic too), and the assertions below count bytes exactly.
    for (const ns of [C, R, U])
      inNs(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    execFileSync('ip', ['-n', R, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', C]);
    execFileSync('ip', ['-n', R, 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', U]);
    for (const [ns, dev, addr] of [
      [R, 'lan', '10.78.0.1/24'],
      [C, 'eth0', '10.78.0.5/24'],
      [R, 'wan', '10.78.1.1/24'],
      [U, 'eth0', '10.78.1.2/24'],
    ] as const) {
      execFileSync('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev]);
      execFileSync('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    execFileSync('ip', ['-n', C, 'route', 'add', 'default', 'via', '10.78.0.1']);
    execFileSync('ip', ['-n', U, 'route', 'add', 'default', 'via', '10.78.1.1']);
    inNs(R, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    execFileSync('ip', ['-n', C, 'link', 'set', 'eth0', 'address', A]);
    nft([`table netdev ${COUNTER_TABLE} {`, ...counterTableLines(['lan']), '}', ...countLines(A), ''].join('\n'));
  });
  test.after(() => {
    for (const ns of [C, R, U]) spawnSync('ip', ['netns', 'del', ns]);
  });

  test(
    "real nft: forwarded bytes counted exactly both ways, and the client's exchanges with the router itself, as " +
      'the kernel quota counts them',
    () => {
      // 3 echo requests of 100 bytes of payload: 128-byte IP packets up, 128-byte replies down.
      inNs(C, 'busybox', 'ping', '-c', '3', '-s', '100', '-W', '2', '10.78.1.2');
      let [a] = read();
      assert.equal({ down: a!.downBytes, up: a!.upBytes }, { down: 384, up: 384 });
      // The client pinging the router (its DNS, the pay page): counted both ways, as the quota counts them (the bill
      // and the brake must agree: devices sharing a purchase were stopped 164 KiB short when they did not).
      inNs(C, 'busybox', 'ping', '-c', '2', '-s', '100', '-W', '2', '10.78.0.1');
      [a] = read();
      assert.equal({ down: a!.downBytes, up: a!.upBytes }, { down: 640, up: 640 });
      const before = a!.epoch;
      nft([...uncountLines(A), ...countLines(A), ''].join('\n'));
      [a] = read();
      assert.equal({ down: a!.downBytes, up: a!.upBytes }, { down: 0, up: 0 });
      assert.is.not(a!.epoch, before, 'made again: a new epoch');
      assert.is(a!.key, A);
    },
  );

  const counters = (logs: string[] = [], command = ['ip', 'netns', 'exec', R, 'nft']): KernelCounters =>
    new KernelCounters({ command, devices: ['lan'], timeoutMs: 5000, log: recordingLog((_l, m) => logs.push(m)) });
  const ping = (from: string): void => {
    inNs(C, 'busybox', 'ping', '-c', '2', '-s', '100', '-W', '2', '-I', from, '10.78.1.2');
  };

  test(
    'KernelCounters: a restart keeps the counters of the clients it is told to (one epoch, the count going on); ' +
      'a new address of the same MAC is counted from its first packet, the old one too; count() again is a new epoch',
    async () => {
      const [a0] = read();
      const kc = counters();
      assert.ok(await kc.start((mac) => mac === A), 'JSON output: on');
      const [a1] = read();
      assert.equal([a1!.epoch, a1!.downBytes, a1!.upBytes], [a0!.epoch, a0!.downBytes, a0!.upBytes], 'kept in place');
      assert.ok(kc.has(A));
      ping('10.78.0.5');
      assert.equal([read()[0]!.downBytes - a1!.downBytes, read()[0]!.upBytes - a1!.upBytes], [256, 256]);
      // A new address (DHCP, or one set by hand) under the same MAC: counted from its first packet, with nothing
      // for sluice to do (counters keyed by address counted nothing until the next listing moved them).
      inNs(C, 'ip', 'addr', 'add', '10.78.0.6/24', 'dev', 'eth0');
      ping('10.78.0.6');
      ping('10.78.0.5');
      const [a2] = read();
      assert.equal(
        [a2!.epoch, a2!.key, a2!.downBytes - a1!.downBytes, a2!.upBytes - a1!.upBytes],
        [a1!.epoch, A, 768, 768],
      );
      // Counted afresh (a gate opened again): a new epoch from 0.
      await kc.count(A);
      const [a3] = read();
      assert.equal([a3!.downBytes, a3!.upBytes], [0, 0]);
      assert.is.not(a3!.epoch, a2!.epoch);
      await kc.uncount(A);
      assert.equal(read(), []);
      assert.is(kc.has(A), false);
    },
  );

  test(
    'KernelCounters: a restart drops the counters of clients not kept; a table gone behind sluice is made again ' +
      'with every counted client, logged',
    async () => {
      await counters().start(() => true);
      const logs: string[] = [];
      const kc = counters(logs);
      await kc.count(A);
      assert.ok(await kc.start(() => false));
      assert.equal(read(), [], 'not kept: deleted');
      await kc.count(A);
      const [before] = read();
      execFileSync('ip', ['netns', 'exec', R, 'nft', 'delete', 'table', 'netdev', COUNTER_TABLE]);
      await kc.count(B); // fails on the missing table: rebuilt with A and B
      const after = read();
      assert.equal(after.map((r) => [r.mac, r.key, r.downBytes]).sort(), [
        [A, A, 0],
        [B, B, 0],
      ]);
      assert.is.not(after.find((r) => r.mac === A)!.epoch, before!.epoch, 'made again: a new epoch');
      assert.ok(
        logs.some((m) => m.includes('table made again')),
        logs.join(' | '),
      );
      assert.is(kc.stats()['rebuilds'], 1);
    },
  );

  test(
    'KernelCounters: an nft without JSON output (nftables-nojson) turns them off: start() is false, the table ' +
      'deleted, changes are no-ops',
    async () => {
      const logs: string[] = [];
      // The real nft, refusing -j as nftables-nojson's does.
      const nojson = [
        'ip',
        'netns',
        'exec',
        R,
        'sh',
        '-c',
        'case " $* " in *" -j "*) echo "Error: JSON support not compiled-in" >&2; exit 1;; esac; exec nft "$@"',
        'nft',
      ];
      const kc = counters(logs, nojson);
      assert.is(await kc.start(() => true), false);
      assert.ok(
        logs.some((m) => m.includes('kernel counters unavailable')),
        logs.join(' | '),
      );
      assert.is(
        spawnSync('ip', ['netns', 'exec', R, 'nft', 'list', 'table', 'netdev', COUNTER_TABLE]).status,
        1,
        'deleted',
      );
      await kc.count(A);
      assert.is(kc.has(A), false);
    },
  );
}

test.run();
