// tier: fast
/**
 * The shaper's scripts and its bookkeeping with recording tc/nft runners (the kernel's side is measured on the lab:
 * test/e2e/rates.test.ts). A change that fails rebuilds everything; a rebuild that fails turns it off; never throws.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SluiceError } from '../../src/errors.ts';
import { Shaper, queuedBytes, shaperTableScript, tcClassArgs, tcQdiscArgs } from '../../src/portal/shaper.ts';
import { planView } from '../../src/api/view.ts';
import { recordingLog } from '../helpers/log.ts';

interface Call {
  tool: 'tc' | 'nft';
  args: string[];
  stdin: string;
}

function rig(fail: (c: Call) => boolean = () => false) {
  const calls: Call[] = [];
  const runner = (tool: 'tc' | 'nft') => async (args: readonly string[], stdin: string) => {
    const c = { tool, args: [...args], stdin };
    calls.push(c);
    if (fail(c)) throw new SluiceError('ERR_SHAPER', `${tool} failed`);
    return '';
  };
  const records: Array<{ message: string }> = [];
  const log = Object.assign(
    recordingLog((_l, message) => records.push({ message })),
    { records },
  );
  const shaper = new Shaper({ devices: ['br-lan'], tc: runner('tc'), nft: runner('nft'), log });
  return { calls, shaper, log };
}

const A = { mac: '02:00:00:00:0c:01', ip: '10.77.0.101', downBps: 2_000_000, upBps: 1_000_000 };
const B = { mac: '02:00:00:00:0c:02', ip: '10.77.0.102', downBps: 8_000_000, upBps: null };

test(
  'scripts: HTB counts IP bytes (stab -14), classes by skb priority from the nft map, upload policed before the ' +
    'quota',
  () => {
    assert.equal(tcQdiscArgs('br-lan'), [
      'qdisc',
      'replace',
      'dev',
      'br-lan',
      'root',
      'handle',
      '51:',
      'stab',
      'overhead',
      '-14',
      'linklayer',
      'ethernet',
      'htb',
      'r2q',
      '1000',
    ]);
    assert.equal(tcClassArgs('br-lan', 10, 2_000_000).slice(-7), [
      'htb',
      'rate',
      '2000000bit',
      'ceil',
      '2000000bit',
      'quantum',
      '1514',
    ]);
    assert.ok(tcClassArgs('br-lan', 10, 2_000_000).includes('51:a'), 'class ids in hex, as tc reads them');
    const script = shaperTableScript(['br-lan'], [{ ...A, minor: 1 }]);
    assert.match(script, /meta priority set ip daddr map @down/);
    // Before the quota (-500) and the counters (-450) at the same hook: what the policer drops is neither.
    assert.match(
      script,
      /hook ingress device "br-lan" priority -550; policy accept; limit name ether saddr map @up drop/,
    );
    assert.match(script, /add element inet sluice_rate down \{ 10\.77\.0\.101 : 51:1 \}/);
    assert.match(
      script,
      /add limit inet sluice_rate u_020000000c01 \{ rate over 125000 bytes\/second burst 15000 bytes \}/,
    );
  },
);

test('set: starts on first use, a class and the elements; remove takes them away; the minor is reused', async () => {
  const { calls, shaper } = rig();
  await shaper.set(A);
  assert.ok(shaper.enabled);
  assert.equal(calls[0]!.args.slice(0, 2), ['qdisc', 'replace'], 'the qdisc first');
  assert.ok(calls.some((c) => c.tool === 'tc' && c.args.includes('51:1') && c.args.includes('2000000bit')));
  assert.match(
    calls.at(-1)!.stdin,
    /down \{ 10\.77\.0\.101 : 51:1 \}[\s\S]*up \{ 02:00:00:00:0c:01 : "u_020000000c01" \}/,
  );
  await shaper.set(B);
  assert.ok(calls.some((c) => c.tool === 'tc' && c.args.includes('51:2')));
  assert.not.match(calls.at(-1)!.stdin, /add element inet sluice_rate up/, 'no upload rate: no limit');
  assert.equal(shaper.ratesOf(A.mac), { downBps: 2_000_000, upBps: 1_000_000 });
  await shaper.remove(A.mac);
  assert.match(calls.at(-3)!.stdin, /delete element inet sluice_rate down \{ 10\.77\.0\.101 \}/);
  assert.equal(calls.at(-2)!.args, ['-s', 'class', 'show', 'dev', 'br-lan', 'classid', '51:1'], 'its queue looked at');
  assert.equal(calls.at(-1)!.args, ['class', 'del', 'dev', 'br-lan', 'classid', '51:1'], 'empty: deleted at once');
  assert.is(shaper.ratesOf(A.mac), null);
  await shaper.set({ ...A, mac: '02:00:00:00:0c:03', ip: '10.77.0.103' });
  assert.ok(calls.at(-2)!.args.includes('51:1'), 'the freed minor is reused');
  assert.equal(shaper.stats(), { enabled: true, clients: 2, changes: 4, failures: 0 });
});

test('remove: a class that still queues sends it first (it was billed), then goes; its minor waits', async () => {
  const calls: Call[] = [];
  let backlog = 'class htb 51:1 root prio 0 rate 2Mbit ceil 2Mbit\n Sent 1 bytes 1 pkt\n backlog 93Kb 4p requeues 0\n';
  const runner = (tool: 'tc' | 'nft') => async (args: readonly string[], stdin: string) => {
    calls.push({ tool, args: [...args], stdin });
    return tool === 'tc' && args[0] === '-s' ? backlog : '';
  };
  const shaper = new Shaper({ devices: ['br-lan'], tc: runner('tc'), nft: runner('nft') });
  const del = (minor: string) => calls.some((c) => c.args.join(' ') === `class del dev br-lan classid 51:${minor}`);
  await shaper.set(A);
  await shaper.remove(A.mac);
  assert.ok(
    calls.some((c) => /delete element inet sluice_rate down/.test(c.stdin)),
    'no longer classed',
  );
  assert.not.ok(del('1'), 'not deleted while it queues 93 KiB');
  await shaper.set({ ...A, mac: '02:00:00:00:0c:03', ip: '10.77.0.103' });
  assert.ok(calls.at(-2)!.args.includes('51:2'), 'the draining minor is not reused');
  backlog = ' backlog 0b 0p requeues 0\n';
  for (let i = 0; i < 100 && !del('1'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(del('1'), 'deleted once empty');
});

test('queuedBytes: what tc -s class show says is queued (bytes or Kb/Mb; 0 packets or nothing readable: 0)', () => {
  assert.is(queuedBytes(' backlog 95340b 4p requeues 0'), 95_340);
  assert.is(queuedBytes(' backlog 93Kb 4p requeues 0'), 93 * 1024);
  assert.is(queuedBytes(' backlog 1.5Mb 900p requeues 0'), 1.5 * 1024 * 1024);
  assert.is(queuedBytes(' backlog 0b 0p requeues 0'), 0);
  assert.is(queuedBytes(''), 0);
});

test('change: new rates at the address the client was set with (ubus change / CoA)', async () => {
  const { calls, shaper } = rig();
  await shaper.set(A);
  await shaper.change(A.mac, { downBps: 4_000_000, upBps: null });
  assert.ok(calls.some((c) => c.tool === 'tc' && c.args.includes('4000000bit') && c.args.includes('51:1')));
  assert.equal(shaper.ratesOf(A.mac), { downBps: 4_000_000, upBps: null });
  await shaper.change('02:00:00:00:0c:09', { downBps: 1_000_000, upBps: null });
  assert.is(shaper.ratesOf('02:00:00:00:0c:09'), null, 'a client never set is not invented');
});

test('a failed change rebuilds; a failed rebuild turns the shaper off, logged, never thrown', async () => {
  let failOnce = false;
  let failAll = false;
  const { calls, shaper, log } = rig((c) => {
    if (failAll) return true;
    if (failOnce && c.tool === 'tc' && c.args[0] === 'class') {
      failOnce = false;
      return true;
    }
    return false;
  });
  await shaper.set(A);
  failOnce = true;
  const before = calls.length;
  await shaper.set(B);
  assert.ok(log.records.some((r) => /shaper change failed: rebuilding/.test(r.message)));
  assert.ok(shaper.enabled, 'rebuilt');
  assert.ok(
    calls.slice(before).some((c) => c.args[1] === 'replace' && c.args[0] === 'qdisc'),
    'a fresh qdisc',
  );
  assert.match(
    calls.at(-1)!.stdin,
    /10\.77\.0\.101 : 51:1[\s\S]*10\.77\.0\.102 : 51:2/,
    'both clients in the rebuilt table',
  );
  failAll = true;
  const mark = calls.length;
  await shaper.set({ ...B, mac: '02:00:00:00:0c:04', ip: '10.77.0.104' });
  assert.not.ok(shaper.enabled, 'off');
  assert.ok(log.records.some((r) => /shaper off/.test(r.message)));
  assert.ok(
    calls.slice(mark).some((c) => c.args.join(' ') === 'delete table inet sluice_rate'),
    'its table deleted',
  );
  await shaper.set(A); // off: nothing, no throw
});

test(
  'start after a restart: the HTB qdisc an earlier run left refuses `replace` (a change); ours is deleted by its ' +
    'handle and made anew',
  async () => {
    // The kernel keeps the old run's qdisc; replacing it with the same kind is a change HTB refuses (seen on the lab).
    const del = (c: Call) => c.tool === 'tc' && c.args.join(' ') === 'qdisc del dev br-lan root handle 51:';
    let old = true;
    const { calls, shaper } = rig((c) => {
      if (del(c)) old = false;
      return c.tool === 'tc' && c.args[0] === 'qdisc' && c.args[1] === 'replace' && old;
    });
    assert.ok(await shaper.start([A, B]), 'on');
    assert.equal(
      calls.slice(0, 3).map((c) => c.args.slice(0, 2).join(' ')),
      ['qdisc replace', 'qdisc del', 'qdisc replace'],
    );
    assert.ok(calls.some(del), "only the qdisc with sluice's handle");
    assert.match(calls.at(-1)!.stdin, /10\.77\.0\.101 : 51:1[\s\S]*10\.77\.0\.102 : 51:2/, 'both clients in the table');
    // A qdisc that cannot be made at all (no tc, no HTB) still turns the shaper off, not into a loop.
    const broken = rig((c) => c.tool === 'tc');
    assert.not.ok(await broken.shaper.start([A]));
  },
);

test(
  "dropLeftover: an earlier run's table is deleted while this run has not started the shaper; a no-op once " +
    'started',
  async () => {
    const { calls, shaper } = rig();
    await shaper.dropLeftover();
    assert.equal(
      calls.map((c) => c.args.join(' ')),
      ['delete table inet sluice_rate'],
    );
    await shaper.set(A);
    const n = calls.length;
    await shaper.dropLeftover();
    assert.is(calls.length, n);
    const none = rig(() => true);
    await none.shaper.dropLeftover(); // no table, or no nft: not an error
    assert.not.ok(none.shaper.enabled);
  },
);

test('a rate-less or address-less client is not limited (and loses an earlier limit)', async () => {
  const { shaper, calls } = rig();
  await shaper.set(A);
  await shaper.set({ ...A, downBps: null, upBps: null });
  assert.is(shaper.ratesOf(A.mac), null);
  const n = calls.length;
  await shaper.set({ ...B, ip: 'fe80::1' });
  assert.is(shaper.ratesOf(B.mac), null);
  assert.is(calls.length, n);
});

test(
  'lifting a limit on a router that never shaped touches ' + 'neither tc nor nft (ubus change rate_down none)',
  async () => {
    const { shaper, calls } = rig();
    await shaper.set({ ...A, downBps: null, upBps: null });
    assert.equal(calls, []);
    assert.is(shaper.stats().enabled, false);
  },
);

test("planView shows a plan's rates (bits per second)", () => {
  const plan = {
    id: 'slow',
    metric: 'seconds' as const,
    stepSize: 60n,
    pricePerStep: 1n,
    asset: '0x',
    currency: 'USDC',
    decimals: 6,
    minSteps: 1n,
    maxSteps: 2n,
    rateDownBps: 2_000_000,
  };
  assert.is(planView(plan).rate_down, 2_000_000);
  assert.is(planView(plan).rate_up, undefined);
});

test.run();
