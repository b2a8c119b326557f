// tier: daemon
/**
 * The kernel quota against the real nft and the real kernel: a router's network namespace of its own (root,
 * nftables) sends UDP datagrams to a client's through its device `lan`, whose egress hook counts and drops them by the
 * client's MAC (the download map). The script builders and the JSON reader are checked on their own first.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { KernelQuota, READ_FAILURES_OFF } from '../../src/portal/kernel-quota.ts';
import {
  KERNEL_QUOTA_TABLE,
  installScript,
  limitScript,
  parseQuotaList,
  parseTableState,
  quotaName,
  removeScript,
  tableScript,
  type BrakedSession,
} from '../../src/portal/kernel-quota-nft.ts';
import { nftRunner } from '../../src/portal/nft-run.ts';
import { KernelCounters } from '../../src/portal/kernel-counting.ts';
import { countedSince } from '../../src/meter/counted-since.ts';
import type { CounterMark } from '../../src/meter/table.ts';
import { recordingLog } from '../helpers/log.ts';
import { skipTest } from '../helpers/skip.ts';

const A = '02:00:00:00:0c:01';

test('scripts: one table replaced whole, a quota per client shared by both maps, changes as single batches', () => {
  const table = tableScript(['br-lan'], [{ mac: A, limitBytes: 2097152.7 }]);
  assert.match(table, /^add table netdev sluice_quota\ndelete table netdev sluice_quota\ntable netdev sluice_quota \{/);
  assert.match(
    table,
    new RegExp(
      /hook ingress device "br-lan" priority -500; policy accept; /.source +
        /meta protocol \{ ip, ip6 \} quota name ether saddr map @up drop;/.source,
    ),
  );
  assert.match(
    table,
    new RegExp(
      /hook egress device "br-lan" priority -500; policy accept; /.source +
        /meta protocol \{ ip, ip6 \} quota name ether daddr map @down drop;/.source,
    ),
  );
  assert.match(table, /add quota netdev sluice_quota q_020000000c01 \{ over 2097152 bytes \}/);
  assert.match(table, /add element netdev sluice_quota up \{ 02:00:00:00:0c:01 : "q_020000000c01" \}/);
  assert.match(table, /add element netdev sluice_quota down \{ 02:00:00:00:0c:01 : "q_020000000c01" \}/);
  // A fresh quota replaces the earlier one in the same transaction (a fresh count).
  const again = installScript({ mac: A, limitBytes: -5 }, { mac: A }).split('\n');
  assert.equal(again.slice(0, 3), [
    'delete element netdev sluice_quota up { 02:00:00:00:0c:01 }',
    'delete element netdev sluice_quota down { 02:00:00:00:0c:01 }',
    'delete quota netdev sluice_quota q_020000000c01',
  ]);
  assert.ok(
    again.includes('add quota netdev sluice_quota q_020000000c01 { over 0 bytes }'),
    'a negative left is 0: every packet dropped',
  );
  assert.is(
    limitScript({ mac: A, limitBytes: 2 ** 80 }),
    `add quota netdev sluice_quota q_020000000c01 { over ${Number.MAX_SAFE_INTEGER} bytes }\n`,
  );
  assert.is(removeScript({ mac: A }).split('\n').length, 4);
  assert.is(quotaName('aa:bb:cc:dd:ee:ff'), 'q_aabbccddeeff');
});

test('parseQuotaList: nft -j output, other tables ignored, garbage refused with ERR_KERNEL_QUOTA', () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      {
        quota: {
          family: 'netdev',
          name: 'q_020000000c01',
          table: KERNEL_QUOTA_TABLE,
          handle: 3,
          bytes: 5000,
          used: 5000,
          inv: true,
        },
      },
      {
        quota: {
          family: 'netdev',
          name: 'q_020000000c02',
          table: KERNEL_QUOTA_TABLE,
          handle: 4,
          bytes: 5000,
          inv: true,
        },
      },
      { quota: { family: 'netdev', name: 'q_020000000c03', table: 'fw4', handle: 5, bytes: 1, used: 9 } },
    ],
  });
  const q = parseQuotaList(json);
  assert.equal([...q.keys()], ['q_020000000c01', 'q_020000000c02']);
  assert.equal(q.get('q_020000000c02'), { limitBytes: 5000, usedBytes: 0 });
  for (const bad of ['', 'nft: not json', '{"x":1}']) {
    assert.throws(
      () => parseQuotaList(bad),
      (e: unknown) => (e as { code?: string }).code === 'ERR_KERNEL_QUOTA',
    );
  }
});

test('parseTableState: nft -j list table → each client in both maps with what its quota still lets through', () => {
  const map = (name: string, elem: unknown[]) => ({
    map: { family: 'netdev', name, table: KERNEL_QUOTA_TABLE, type: 'x', handle: 3, map: 'quota', elem },
  });
  const quota = (name: string, bytes: number, used?: number) => ({
    quota: {
      family: 'netdev',
      name,
      table: KERNEL_QUOTA_TABLE,
      handle: 7,
      bytes,
      ...(used === undefined ? {} : { used }),
      inv: true,
    },
  });
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { table: { family: 'netdev', name: KERNEL_QUOTA_TABLE, handle: 1 } },
      quota('q_020000000c01', 3000, 1000),
      quota('q_020000000c02', 5000),
      quota('q_020000000c03', 2000, 2600),
      quota('q_020000000c04', 9),
      map('up', [
        ['02:00:00:00:0c:01', 'q_020000000c01'],
        ['02:00:00:00:0C:02', 'q_020000000c02'],
        ['02:00:00:00:0c:03', 'q_020000000c03'],
        ['02:00:00:00:0c:04', 'q_020000000c04'],
        ['02:00:00:00:0c:05', 'q_020000000c05'],
      ]),
      map('down', [
        ['02:00:00:00:0c:02', 'q_020000000c02'],
        ['02:00:00:00:0c:01', 'q_020000000c01'],
        ['02:00:00:00:0c:03', 'q_020000000c03'],
        ['02:00:00:00:0c:05', 'q_020000000c05'],
      ]),
    ],
  });
  const state = parseTableState(json);
  assert.equal(
    state.clients,
    [
      { mac: '02:00:00:00:0c:01', limitBytes: 3000, usedBytes: 1000 },
      { mac: '02:00:00:00:0c:02', limitBytes: 5000, usedBytes: 0 },
      { mac: '02:00:00:00:0c:03', limitBytes: 2000, usedBytes: 2600 },
    ],
    'c04 has no download side, c05 no quota object',
  );
  assert.is(state.intact, false, 'no chains: the table is replaced, not changed in place');
  const chain = (name: string) => ({ chain: { family: 'netdev', table: KERNEL_QUOTA_TABLE, name, handle: 5 } });
  const whole = JSON.parse(json) as { nftables: unknown[] };
  whole.nftables.push(chain('upload'), chain('download'));
  assert.is(parseTableState(JSON.stringify(whole)).intact, true);
  assert.equal(
    parseTableState(JSON.stringify({ nftables: [{ table: { family: 'netdev', name: KERNEL_QUOTA_TABLE } }] })),
    { clients: [], intact: false },
  );
});

test('a missing nft: start() says false and logs it; every change is then a no-op, nothing throws', async () => {
  const logs: string[] = [];
  const kq = new KernelQuota({
    devices: ['lan'],
    run: nftRunner(['/nonexistent/nft'], 2000),
    log: recordingLog((_l, m) => logs.push(m)),
    session: () => null,
  });
  assert.is(await kq.start(), false);
  assert.is(kq.enabled, false);
  await kq.set(A, 1000);
  await kq.remove(A);
  assert.is((await kq.usedUp()).size, 0);
  assert.ok(
    logs.some((m) => m.startsWith('kernel quota unavailable')),
    logs.join('; '),
  );
});

/**
 * An nft that answers like the real one where it works: `-f -` takes any script, `-j list table` lists these once
 * the table was made.
 */
function fakeNft(opts: { json: () => boolean; quotas?: () => unknown[] }) {
  const calls: string[][] = [];
  let made = false;
  const run = async (args: readonly string[], stdin = ''): Promise<string> => {
    calls.push([...args]);
    if (stdin.includes(`table netdev ${KERNEL_QUOTA_TABLE} {`)) made = true;
    if (args[0] === '-j') {
      // OpenWrt's nftables-nojson prints this and exits 1 for any -j.
      if (!opts.json())
        throw Object.assign(new Error('nft failed (exit 1): Error: JSON support not compiled-in'), {
          code: 'ERR_KERNEL_QUOTA',
        });
      if (args[2] === 'table' && !made) throw new Error('nft failed (exit 1): Error: No such file or directory');
      return JSON.stringify({ nftables: [{ metainfo: { version: '1.0.8' } }, ...(opts.quotas?.() ?? [])] });
    }
    return '';
  };
  return { run, calls };
}

test(
  'an nft without JSON output (nftables-nojson): start() ' + 'says false, deletes the table it made, logs why',
  async () => {
    const nft = fakeNft({ json: () => false });
    const logs: Array<[string, Record<string, unknown> | undefined]> = [];
    const kq = new KernelQuota({
      devices: ['lan'],
      run: nft.run,
      log: recordingLog((_l, m, d) => logs.push([m, d])),
      session: () => ({ left: 1000, allotment: 1000n }),
    });
    assert.is(await kq.start(), false);
    assert.is(kq.enabled, false);
    assert.ok(
      nft.calls.some((c) => c.join(' ') === `delete table netdev ${KERNEL_QUOTA_TABLE}`),
      'the table it had made is deleted',
    );
    const [message, details] = logs.at(-1)!;
    assert.is(message, 'kernel quota unavailable: gates close by the portal alone');
    assert.match(String(details?.reason), /JSON support not compiled-in/);
    await kq.set(A, 1000);
    assert.not.ok(kq.has(A), 'no quota is set while off');
  },
);

test(
  `reads that fail ${READ_FAILURES_OFF} times in a row turn the brake off and delete the table: a stop nobody ` +
    'sees would hang the session',
  async () => {
    let json = true;
    const nft = fakeNft({ json: () => json });
    const logs: string[] = [];
    const kq = new KernelQuota({
      devices: ['lan'],
      run: nft.run,
      log: recordingLog((_l, m) => logs.push(m)),
      session: () => ({ left: 1000, allotment: 1000n }),
    });
    assert.ok(await kq.start());
    await kq.set(A, 1000);
    assert.ok(kq.has(A));
    json = false;
    for (let i = 1; i < READ_FAILURES_OFF; i++) assert.is((await kq.usedUp()).size, 0);
    json = true;
    await kq.usedUp(); // a read that works resets the count
    json = false;
    for (let i = 1; i < READ_FAILURES_OFF; i++) await kq.usedUp();
    assert.ok(kq.enabled && kq.has(A), `still on after ${READ_FAILURES_OFF - 1} failures in a row`);
    await kq.usedUp();
    await kq.remove('02:00:00:00:0c:09'); // queued behind the turn-off
    assert.is(kq.enabled, false);
    assert.not.ok(kq.has(A));
    assert.ok(nft.calls.some((c) => c.join(' ') === `delete table netdev ${KERNEL_QUOTA_TABLE}`));
    assert.is(logs.filter((m) => m === 'kernel quota: cannot read the quotas').length, 2 * (READ_FAILURES_OFF - 1));
    assert.ok(
      logs.some((m) => m.startsWith(`kernel quota off: ${READ_FAILURES_OFF} reads of the quotas failed in a row`)),
      logs.join('; '),
    );
  },
);

test('the quotas are read by listing the table (nft reads the whole ruleset for list quotas)', async () => {
  const nft = fakeNft({ json: () => true });
  const kq = new KernelQuota({ devices: ['lan'], run: nft.run, session: () => ({ left: 1000, allotment: 1000n }) });
  assert.ok(await kq.start());
  await kq.set(A, 1000);
  const before = nft.calls.length;
  await kq.usedUp();
  assert.equal(nft.calls.slice(before), [['-j', 'list', 'table', 'netdev', KERNEL_QUOTA_TABLE]]);
});

const root = process.getuid?.() === 0;
const haveNft = spawnSync('nft', ['--version']).status === 0;
const haveIp = spawnSync('ip', ['-V']).status === 0;

if (!root || !haveNft || !haveIp) {
  // CI runs as root with nft and ip installed: a skip there is a failure.
  skipTest(
    test,
    'kernel quota against the real kernel',
    `needs root, nft and ip (root=${root} nft=${haveNft} ip=${haveIp})`,
    { ciInstalls: true },
  );
} else {
  const id = randomBytes(3).toString('hex');
  const ns = `sluice-kq-${id}`;
  const client = `sluice-kq-${id}-c`;
  const inNs = (cmd: string, args: string[], where = ns) =>
    execFileSync('ip', ['netns', 'exec', where, cmd, ...args], { encoding: 'utf8' });
  /** The datagrams the client received so far (its input chain counts and drops them: nothing comes back). */
  const received = (): number =>
    Number(/packets (\d+)/.exec(inNs('nft', ['list', 'counter', 'ip', 't', 'got'], client))![1]);
  /**
   * Sends `n` UDP datagrams from the router's namespace to the client's (MAC A, behind the router's device `lan`),
   * each `frameBytes` as the egress hook counts them (its IP packet and the 14-byte Ethernet header); returns how
   * many reached the client (a drop at egress is not an error to the sender).
   */
  const send = (n: number, frameBytes = 1000): number => {
    const before = received();
    inNs('python3', [
      '-c',
      `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${n}):
    s.sendto(b'x' * ${frameBytes - 14 - 28}, ('10.79.0.2', 9))`,
    ]);
    return received() - before;
  };

  test.before(() => {
    for (const where of [ns, client]) {
      execFileSync('ip', ['netns', 'add', where]);
      inNs('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], where);
    }
    execFileSync('ip', ['-n', ns, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
    execFileSync('ip', ['-n', client, 'link', 'set', 'eth0', 'address', A]);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '10.79.0.1/24', 'dev', 'lan']);
    execFileSync('ip', ['-n', client, 'addr', 'add', '10.79.0.2/24', 'dev', 'eth0']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lan', 'up']);
    execFileSync('ip', ['-n', client, 'link', 'set', 'eth0', 'up']);
    execFileSync('ip', ['-n', ns, 'neigh', 'replace', '10.79.0.2', 'lladdr', A, 'dev', 'lan', 'nud', 'permanent']);
    inNs(
      'nft',
      [
        'add table ip t; add counter ip t got; ' +
          'add chain ip t in { type filter hook input priority 0; udp dport 9 counter name got drop; }',
      ],
      client,
    );
  });
  test.after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('ip', ['netns', 'del', client]);
  });

  test(
    'real kernel: the quota lets exactly its bytes through, both ways share it, a top-up adds on, removal frees ' +
      'the client',
    async () => {
      let allotment = 10_000n;
      const session = (): BrakedSession => ({ left: 3000, allotment });
      const kq = new KernelQuota({
        devices: ['lan'],
        run: nftRunner(['ip', 'netns', 'exec', ns, 'nft'], 5000),
        session,
      });
      assert.ok(await kq.start(), 'table created');
      await kq.set(A, 3000);
      assert.ok(kq.has(A));
      assert.is(send(5), 3, 'three 1000-byte packets fit a 3000-byte quota, the rest is dropped');
      assert.equal([...(await kq.usedUp())], [A]);
      // A top-up once the kernel stopped it: the kernel counted the two dropped packets too, so a grown limit would
      // fall short by them; the client gets a fresh quota of its bytes left (session(): 3000) instead.
      allotment += 2000n;
      await kq.toppedUp(A);
      assert.is(send(4), 3);
      // A top-up while it still passes grows the limit and the count goes on: 1500 more of a fresh 3000 sent, +2000 →
      // 3500 left.
      await kq.set(A, 3000);
      assert.is(send(1, 1500), 1);
      allotment += 2000n;
      await kq.toppedUp(A);
      assert.is(send(4), 3, '1500 + 3 × 1000 < 5000, a fourth would reach it');
      await kq.remove(A);
      assert.not.ok(kq.has(A));
      assert.is(send(3), 3, 'no quota: nothing dropped');
      assert.is((await kq.usedUp()).size, 0);
      // A fresh quota for the same client restarts the count.
      await kq.set(A, 2000);
      assert.is(send(3), 2);
      assert.equal(kq.stats(), { enabled: true, clients: 1, changes: 6, failures: 0 });
    },
  );

  test(
    'real kernel: an allotment set lower (CoA-Request, ubus change) lowers the quota by as much, the count going ' +
      'on',
    async () => {
      let allotment = 10_000n;
      // the earlier test's quota would be inherited
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', KERNEL_QUOTA_TABLE]);
      const kq = new KernelQuota({
        devices: ['lan'],
        run: nftRunner(['ip', 'netns', 'exec', ns, 'nft'], 5000),
        session: () => ({ left: 0, allotment }),
      });
      assert.ok(await kq.start());
      await kq.set(A, 5000);
      assert.is(send(1), 1);
      allotment -= 3000n; // 5000 → 2000 over the same count: 1000 sent, one more packet fits
      await kq.toppedUp(A);
      assert.is(send(3), 1, 'stopped at the lowered allotment, not the one the quota was installed with');
      allotment -= 5000n; // below what passed: stays used up
      await kq.toppedUp(A);
      assert.is(send(2), 0);
      await kq.remove(A);
    },
  );

  test(
    'real kernel: a device of a shared purchase stopped by its quota gets its whole next share, whatever the ' +
      'kernel dropped meanwhile',
    async () => {
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', KERNEL_QUOTA_TABLE]);
      const kq = new KernelQuota({
        devices: ['lan'],
        run: nftRunner(['ip', 'netns', 'exec', ns, 'nft'], 5000),
        session: () => ({ left: 10_000, allotment: 10_000n }),
      });
      assert.ok(await kq.start());
      await kq.set(A, 3000);
      assert.is(send(8), 3, 'its share passes, the rest is dropped');
      kq.noteBilled(A, 3000); // the meter billed what passed
      assert.match(
        inNs('nft', ['list', 'quota', 'netdev', KERNEL_QUOTA_TABLE, quotaName(A)]),
        /over 3000 bytes used 3000 bytes/,
        'the kernel lists no more than the limit (it counted 8000)',
      );
      // A limit raised from the listed count (3000 + 4000) would let nothing through: the kernel's count is 8000.
      await kq.share([{ mac: A, shareBytes: 4000 }]);
      assert.is(send(6), 4, 'the share passes whole');
      kq.noteBilled(A, 4000);
      await kq.share([{ mac: A, shareBytes: 2000 }]);
      assert.is(send(3), 2, 'and the next one too');
      await kq.remove(A);
    },
  );

  test(
    'real kernel: a table changed behind sluice is rebuilt from the sessions on the next change; start() ' +
      'replaces a stale table',
    async () => {
      const logs: string[] = [];
      const kq = new KernelQuota({
        devices: ['lan'],
        run: nftRunner(['ip', 'netns', 'exec', ns, 'nft'], 5000),
        log: recordingLog((_l, m) => logs.push(m)),
        session: () => ({ left: 1000, allotment: 1n }),
      });
      assert.ok(await kq.start([{ mac: A, limitBytes: 50_000 }]), 'a stale table from a previous run is replaced');
      inNs('nft', ['delete', 'table', 'netdev', KERNEL_QUOTA_TABLE]);
      // fails: no table → rebuilt with each client's bytes left (1000)
      await kq.set('02:00:00:00:0c:02', 5000);
      assert.ok(
        logs.some((m) => m.startsWith('kernel quota change failed: rebuilding')),
        logs.join('; '),
      );
      assert.ok(kq.enabled);
      assert.is(send(3), 1, "the rebuilt quota is the session's bytes left");
      const listed = inNs('nft', ['list', 'table', 'netdev', KERNEL_QUOTA_TABLE]);
      assert.match(listed, /q_020000000c02/);
    },
  );

  test(
    'real kernel: the quota table deleted behind sluice is made again with what is left now, the bytes its ' +
      "counters counted past the meter's last billed reading taken off (they would pass twice), those that pass " +
      'while it is made too',
    async () => {
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', KERNEL_QUOTA_TABLE]);
      const nft = nftRunner(['ip', 'netns', 'exec', ns, 'nft'], 5000);
      /** Datagrams sent just before the next table is made: after the counters' first read, before the new quota. */
      let whileMade = 0;
      const run: typeof nft = async (args, stdin) => {
        if (stdin.startsWith(`add table netdev ${KERNEL_QUOTA_TABLE}\ndelete table`)) whileMade -= send(whileMade);
        return nft(args, stdin);
      };
      const counters = new KernelCounters({
        command: ['ip', 'netns', 'exec', ns, 'nft'],
        devices: ['lan'],
        timeoutMs: 5000,
      });
      assert.ok(await counters.start(() => false));
      await counters.count(A);
      const ALLOTMENT = 10_000;
      /** The meter's last billed reading of A's counters, and what it billed (the session's bytes left follow it). */
      let mark: CounterMark = { token: 0, down: 0, up: 0 };
      const reading = async (): Promise<CounterMark> => {
        const r = (await counters.read(A))!;
        return { token: r.epoch, down: r.down, up: r.up };
      };
      const kq = new KernelQuota({
        devices: ['lan'],
        run,
        session: () => ({ left: ALLOTMENT - mark.down - mark.up, allotment: BigInt(ALLOTMENT) }),
      });
      // As the meter answers it (Meter.sinceBilled): the marks taken when asked.
      kq.rebuildWith(() => {
        const marks = new Map([[A, mark]]);
        return (readings) => countedSince(marks, readings);
      });
      assert.ok(await kq.start());
      await kq.set(A, ALLOTMENT);
      assert.is(send(3), 3);
      mark = await reading(); // billed: 3 datagrams
      assert.is(send(2), 2, 'after the reading: not billed yet');
      inNs('nft', ['delete', 'table', 'netdev', KERNEL_QUOTA_TABLE]);
      assert.is(send(1), 1, 'no table: nothing braked, the counters count on');
      whileMade = 2;
      await kq.rebuild('table netdev sluice_quota deleted');
      assert.is(whileMade, 0, 'sent while the table was made');
      const now = await reading();
      const left = ALLOTMENT - now.down - now.up;
      // 8 datagrams of 986 IP bytes counted, 2112 B left: the quota (1000 B a frame as it counts) lets 2 more through.
      assert.is(send(10), Math.floor(left / 1000), `${left} B left by the counters`);
      await kq.remove(A);
      await counters.uncount(A);
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', 'sluice_count']);
    },
  );

  test(
    "real kernel: a table gone behind sluice's back makes every read fail; the brake turns itself off rather " +
      'than hang',
    async () => {
      const logs: string[] = [];
      const kq = new KernelQuota({
        devices: ['lan'],
        run: nftRunner(['ip', 'netns', 'exec', ns, 'nft'], 5000),
        log: recordingLog((_l, m) => logs.push(m)),
        session: () => ({ left: 1000, allotment: 1000n }),
      });
      assert.ok(await kq.start());
      await kq.set(A, 1000);
      inNs('nft', ['delete', 'table', 'netdev', KERNEL_QUOTA_TABLE]);
      for (let i = 0; i < READ_FAILURES_OFF; i++) assert.is((await kq.usedUp()).size, 0);
      await kq.remove(A); // queued behind the turn-off
      assert.is(kq.enabled, false);
      assert.not.ok(kq.has(A));
      assert.ok(
        logs.some((m) => m.startsWith('kernel quota off:')),
        logs.join('; '),
      );
      assert.is(send(3), 3, 'nothing braked');
    },
  );

  test(
    'real kernel: a restart carries over what the kernel ' + 'counted while sluice was down, for live sessions only',
    async () => {
      const B = '02:00:00:00:0c:02';
      const run = nftRunner(['ip', 'netns', 'exec', ns, 'nft'], 5000);
      // the earlier tests' table, if any
      spawnSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', KERNEL_QUOTA_TABLE]);
      const before = new KernelQuota({
        devices: ['lan'],
        run,
        session: () => ({ left: 5000, allotment: 5000n }),
      });
      assert.ok(await before.start());
      await before.set(A, 5000);
      await before.set(B, 7000);
      assert.is(send(2), 2, "2000 of A's 5000 pass before the crash");
      // The restarted daemon: its journal's last checkpoint predates those 2000 bytes (A's left 10000 by the journal);
      // B's session ended while it was down.
      const logs: Array<[string, Record<string, unknown> | undefined]> = [];
      const after = new KernelQuota({
        devices: ['lan'],
        run,
        log: recordingLog((_l, m, d) => logs.push([m, d])),
        session: (mac) => (mac === A ? { left: 10_000, allotment: 12_000n } : null),
      });
      assert.ok(await after.start());
      assert.ok(after.has(A), 'A carried over');
      assert.not.ok(after.has(B), 'B has no live session: its quota is gone');
      assert.not.match(inNs('nft', ['list', 'table', 'netdev', KERNEL_QUOTA_TABLE]), /q_020000000c02/);
      assert.equal(logs.find(([m]) => m === 'kernel quota on')?.[1], {
        table: `netdev ${KERNEL_QUOTA_TABLE}`,
        devices: 'lan',
        clients: 1,
        carried_over: 1,
      });
      assert.match(
        inNs('nft', ['list', 'quota', 'netdev', KERNEL_QUOTA_TABLE, quotaName(A)]),
        /over 5000 bytes used 2000 bytes/,
        'changed in place: the count goes on',
      );
      assert.is(send(1), 1, "1000 more: 2000 left by the kernel's count");
      // A re-auth (the portal lost the client meanwhile) asks for the journal's 10000: the kernel's 2000 stand.
      await after.set(A, 10_000);
      assert.is(send(4), 2, 'the quota carried over still stops it where the kernel counted, not the journal');
      // Once set afresh, the quota is the caller's again.
      await after.set(A, 3000);
      assert.is(send(4), 3);
      // A refill (the meter's exact bytes left after a stop) is never held to a carried-over count.
      const again = new KernelQuota({
        devices: ['lan'],
        run,
        session: () => ({ left: 10_000, allotment: 12_000n }),
      });
      assert.ok(await again.start());
      assert.ok(again.has(A), 'carried over, used up (left 0)');
      await again.refill(A, 2000);
      assert.is(send(3), 2);
      // The journal's bytes left fewer than the kernel's (a quota set from a stale journal): lowered, the count kept.
      await again.refill(A, 5000);
      assert.is(send(1), 1);
      const lower = new KernelQuota({
        devices: ['lan'],
        run,
        session: () => ({ left: 500, allotment: 12_000n }),
      });
      assert.ok(await lower.start());
      assert.match(
        inNs('nft', ['list', 'quota', 'netdev', KERNEL_QUOTA_TABLE, quotaName(A)]),
        /over 1500 bytes used 1000 bytes/,
      );
      assert.is(send(1), 0, 'a 1000-byte packet no longer fits');
    },
  );
}

test.run();
