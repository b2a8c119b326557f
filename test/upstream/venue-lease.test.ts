// tier: fast
/**
 * The venue lease's dead-man's switch, pure parts (upstream/venue-lease-time.ts, venue-lease.ts, the IPv6 gate's
 * lease elements on a recording nft): the element's timeout is strictly shorter than the fleet's TTL as the fleet
 * counts it (from the renewing status's `at`, never later than its arrival), measured from before the status is sent
 * (the kernel has the element before the status is stamped); a round is one nft batch for every leased device; two
 * rounds fit in one element's life; a restart renews nothing the fleet has not confirmed. The router's status declares
 * its lease TTL (`lease_ttl`) where the switch runs, and only there: the fleet waits at least that long.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { leaseMarginMs, leaseTimeoutMs, renewEveryMs } from '../../src/upstream/venue-lease-time.ts';
import { VenueLeaseSwitch } from '../../src/upstream/venue-lease.ts';
import { gateTableScript, leaseScript, parseLeaseLive } from '../../src/portal/ipv6-gate-nft.ts';
import { Ipv6Gate } from '../../src/portal/ipv6-gate.ts';
import { silentLogger } from '../../src/log.ts';
import { upstreamStatus, type DaemonParts } from '../../src/api/daemon-status.ts';

const A = '02:00:00:00:0a:01';
const B = '02:00:00:00:0a:02';

test('the element lapses strictly before the fleet can move the lease, by at least a second of skew', () => {
  for (const ttlMs of [5_000, 8_000, 12_000, 60_000, 90_000, 600_000, 86_400_000]) {
    const timeout = leaseTimeoutMs(ttlMs);
    assert.ok(timeout < ttlMs, `${timeout} < ${ttlMs}`);
    assert.ok(ttlMs - timeout >= 1000 && ttlMs - timeout >= leaseMarginMs(ttlMs), `margin of ${ttlMs}`);
    // Renewed at r (the kernel has it by r + nft), the status stamped at s ≥ r + nft, read by the fleet as
    // min(s, arrival): the element lapses at r + nft + timeout ≤ s + timeout, before the fleet's s + TTL even with the
    // router's clock a margin's worth behind.
    const r = 1_000_000;
    for (const nft of [0, 5, 900]) {
      const s = r + nft;
      const arrival = s + 40;
      const skew = leaseMarginMs(ttlMs) - 1;
      assert.ok(r + nft + timeout < Math.min(s - skew, arrival) + ttlMs, `ttl ${ttlMs}, nft ${nft} ms`);
    }
  }
});

test("two rounds in one element's life, never less often than the status beat", () => {
  for (const [ttlMs, status] of [
    [90_000, 60_000],
    [8_000, 5_000],
    [12_000, 5_000],
    [600_000, 60_000],
  ] as const) {
    const timeout = leaseTimeoutMs(ttlMs);
    const every = renewEveryMs(timeout, status);
    assert.ok(every * 2 <= timeout, `${every} × 2 ≤ ${timeout}`);
    assert.ok(every <= status);
  }
  assert.is(renewEveryMs(leaseTimeoutMs(90_000), 60_000), 27_000);
});

test("a round's status lost (killed after its batch, the broker down): the element lapses before the lease", () => {
  for (const [ttlMs, status] of [
    [5_000, 60_000],
    [8_000, 5_000],
    [90_000, 60_000],
    [90_000, 10_000],
    [600_000, 60_000],
    [86_400_000, 60_000],
  ] as const) {
    const timeout = leaseTimeoutMs(ttlMs);
    const every = renewEveryMs(timeout, status);
    const skew = leaseMarginMs(ttlMs) - 1;
    // The fleet last heard the status of round k-1, stamped at s; round k renewed the elements one period later (its
    // status never arrived) and nothing renewed them since: they lapse before the lease expires from s.
    const s = 1_000_000;
    const renewedAt = s + every;
    assert.ok(
      renewedAt + timeout < s - skew + ttlMs,
      `ttl ${ttlMs}, status ${status}: lapses at +${every + timeout} ms, the lease at +${ttlMs - skew} ms`,
    );
  }
});

test('a round: the kernel has every element before the status is stamped; one nft batch for all', async () => {
  const order: string[] = [];
  const runs: string[] = [];
  const gate = new Ipv6Gate({
    run: async (args, stdin) => {
      if (args.includes('-j')) throw new Error('no table');
      runs.push(stdin);
      order.push('nft');
      await new Promise((r) => setTimeout(r, 5));
      return '';
    },
    devices: ['br-lan'],
    log: silentLogger,
    leaseTimeoutMs: 7000,
  });
  await gate.start([]);
  await gate.open(A);
  await gate.open(B);
  runs.length = 0;
  order.length = 0;
  const sw = new VenueLeaseSwitch({
    gate,
    statusNow: () => order.push('status'),
    claim: () => true,
    everyMs: 3500,
    log: silentLogger,
    timers: { setTimeout: () => 0 as never, clearTimeout: () => undefined },
  });
  await sw.round();
  assert.equal(order, ['nft', 'status']);
  assert.is(runs.length, 1, 'one batch');
  assert.is(runs[0], leaseScript([A, B], 7000));
  assert.ok(runs[0]!.includes(`lease_live { ${A} timeout 7000ms }`) && runs[0]!.includes(`lease_live { ${B} timeout`));
  sw.close();
});

test('a round that renewed no element publishes no status; one that renewed, or failed to, does', async () => {
  const order: string[] = [];
  let failing = false;
  const gate = new Ipv6Gate({
    run: async (args, stdin) => {
      if (args.includes('-j')) throw new Error('no table');
      if (failing && stdin.includes('lease_live')) throw new Error('nft: busy');
      order.push('nft');
      return '';
    },
    devices: ['br-lan'],
    log: silentLogger,
    leaseTimeoutMs: 7000,
  });
  await gate.start([]);
  order.length = 0;
  const sw = new VenueLeaseSwitch({
    gate,
    statusNow: () => order.push('status'),
    claim: () => true,
    everyMs: 3500,
    log: silentLogger,
    timers: { setTimeout: () => 0 as never, clearTimeout: () => undefined },
  });
  await sw.round();
  assert.equal(order, [], "no device leased here: the sink's own beat is the only status");
  await gate.open(A);
  order.length = 0;
  await sw.round();
  assert.equal(order, ['nft', 'status'], 'a leased device: its element, then the status that renews its lease');
  failing = true;
  order.length = 0;
  await sw.round();
  assert.equal(order, ['status'], 'a batch that failed: the status still goes out, as before the switch');
  failing = false;
  await gate.close(A);
  order.length = 0;
  await sw.round();
  assert.equal(order, [], 'its session ended: nothing leased, no status');
  sw.close();
});

test('the table: a leased device passes only while its element lives, both ways', () => {
  const t = gateTableScript({
    devices: ['br-lan'],
    open: [A],
    garden: [],
    ports: [],
    leased: [A],
    leaseLive: new Map([[A, 2500.7]]),
  });
  assert.ok(t.includes(`set leased { type ether_addr; elements = { ${A} }; }`));
  assert.ok(t.includes(`set lease_live { type ether_addr; flags timeout; elements = { ${A} timeout 2500ms }; }`));
  assert.ok(t.includes('ether saddr @leased ether saddr != @lease_live jump closing_upload'));
  assert.ok(t.includes('ether daddr @leased ether daddr != @lease_live jump closing_download'));
});

test('a restart keeps what the kernel had left, renews nothing until the fleet confirms', async () => {
  const runs: string[] = [];
  const listing = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      {
        set: {
          name: 'lease_live',
          elem: [{ elem: { val: A, timeout: 7, expires: 3 } }, { elem: { val: 'junk', expires: 3 } }],
        },
      },
    ],
  });
  assert.equal([...parseLeaseLive(listing)], [[A, 3000]]);
  assert.equal([...parseLeaseLive('{"nftables": [')], []);
  const gate = new Ipv6Gate({
    run: async (args, stdin) => {
      if (args.includes('-j')) return listing;
      runs.push(stdin);
      return '';
    },
    devices: ['br-lan'],
    log: silentLogger,
    leaseTimeoutMs: 7000,
  });
  await gate.start([A, B]);
  assert.ok(runs[0]!.includes(`set leased { type ether_addr; elements = { ${A}, ${B} }; }`));
  assert.match(
    runs[0]!,
    new RegExp(
      `set lease_live \\{ type ether_addr; flags timeout; elements = \\{ ${A} timeout (2\\d{3}|3000)ms \\}; \\}`,
    ),
  );
  assert.equal(gate.unconfirmed(), [A, B]);
  assert.equal(await gate.renewLeases(), [], 'nothing renewed before the fleet confirms');
  assert.is(runs.length, 1);
  // Re-opened meanwhile (a reconcile found the portal's gate closed): still not renewed.
  await gate.open(A);
  assert.equal(await gate.renewLeases(), []);
  assert.ok(gate.confirm(A));
  assert.equal(await gate.renewLeases(), [A]);
  assert.is(runs.at(-1), leaseScript([A], 7000));
  await gate.close(B);
  assert.equal(gate.unconfirmed(), [], 'an ended session is no longer leased');
});

test('the switch claims unconfirmed leases, and a held-here answer renews at once', async () => {
  const claims: string[] = [];
  let statuses = 0;
  const confirmed = new Set<string>();
  const sw = new VenueLeaseSwitch({
    gate: {
      renewLeases: async () => [...confirmed],
      unconfirmed: () => [A].filter((m) => !confirmed.has(m)),
      confirm: (m) => (confirmed.has(m) ? false : (confirmed.add(m), true)),
    },
    statusNow: () => void statuses++,
    claim: (mac) => (claims.push(mac), true),
    everyMs: 3500,
    log: silentLogger,
    timers: { setTimeout: () => 0 as never, clearTimeout: () => undefined },
  });
  sw.start();
  await sw.round();
  assert.equal(claims, [A]);
  sw.answered(A, 'held');
  assert.is(confirmed.size, 0, 'held elsewhere: stays stopped');
  const before = statuses;
  sw.answered(A, 'held-here');
  await sw.round();
  assert.ok(confirmed.has(A));
  assert.ok(statuses > before);
  sw.close();
});

test("the status declares the lease TTL where the switch runs (venue and the kernel's gate), nowhere else", () => {
  const status = (main: { venue: string; kernelQuota: boolean; venueLeaseTtlMs: number }) =>
    upstreamStatus({
      startedAt: Date.now(),
      sessions: { stats: () => ({}) },
      meter: { stats: () => ({ tick_ms_p50: 1 }) },
      journal: { stats: () => ({ writeFailures: 0, failing: null }) },
      config: { config: { main, pricing: [] }, problems: [] },
      metering: null,
    } as unknown as DaemonParts);
  assert.is(status({ venue: 'hall', kernelQuota: true, venueLeaseTtlMs: 60_000 }).lease_ttl, 60);
  assert.is(status({ venue: 'hall', kernelQuota: true, venueLeaseTtlMs: 8_500 }).lease_ttl, 9, 'whole seconds, up');
  assert.ok(!('lease_ttl' in status({ venue: '', kernelQuota: true, venueLeaseTtlMs: 90_000 })), 'no venue');
  assert.ok(!('lease_ttl' in status({ venue: 'hall', kernelQuota: false, venueLeaseTtlMs: 90_000 })), 'no switch');
});

test.run();
