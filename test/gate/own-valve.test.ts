// tier: daemon
/**
 * `portal 'sluice'` as the daemon assembles it (gate/portal.ts openPortal) against the real nft in a network namespace
 * of its own: a grant is one nft transaction (the gate's set elements, the kernel quota, the counters, the IPv6 gate)
 * and so is a close; grants that arrive together share runs (each set's elements one command of the run); a
 * transaction nft refuses makes nothing of the gate, each module's part runs alone, and an opening whose gate part nft
 * refuses fails with ERR_GATE_NFT and takes back what was made for the device. nft's runs are counted by the `main.nft`
 * wrapper each one goes through.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromUciPartial } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { openPortal, startCounting, type Portal } from '../../src/gate/portal.ts';
import { silentLogger } from '../../src/log.ts';
import { sharedCommandShell } from '../../src/portal/command-shell.ts';
import type { SessionReadView } from '../../src/sessions/index.ts';
import { toSluiceError } from '../../src/errors.ts';
import { lacking, skipTest } from '../helpers/skip.ts';
import { until } from '../helpers/until.ts';

const MACS = Array.from({ length: 12 }, (_, i) => `02:00:00:00:0d:${String(i + 1).padStart(2, '0')}`);
const [A, B] = MACS as [string, string];
const ARP = [
  'IP address       HW type     Flags       HW address            Mask     Device',
  ...MACS.map((m, i) => `10.78.0.${101 + i}      0x1         0x2         ${m}     *        lan`),
].join('\n');

const lacks = lacking(['root', 'nft', 'ip']);
if (lacks) {
  skipTest(test, "portal 'sluice': one nft transaction per grant and per close", lacks, { ciInstalls: true });
} else {
  const id = randomBytes(3).toString('hex');
  const R = `ov-${id}-r`;
  const dir = mkdtempSync(join(tmpdir(), 'own-valve-'));
  const runsFile = join(dir, 'runs');
  const lastScript = join(dir, 'last.nft');
  const arpFile = join(dir, 'arp');
  /** What the kernel held for the device each time a close's `conntrack -D` ran (the conntrack wrapper writes it). */
  const atFlush = join(dir, 'at-flush');
  const inR = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', R, ...args], { encoding: 'utf8' });
  /** The `nft -f -` runs made so far (the wrapper notes each run's arguments). */
  const runs = (): number =>
    readFileSync(runsFile, 'utf8')
      .split('\n')
      .filter((l) => l === '-f -').length;
  let portal: Portal;

  test.before(async () => {
    execFileSync('ip', ['netns', 'add', R]);
    execFileSync('ip', ['-n', R, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'lan1']);
    for (const dev of ['lan', 'lan1']) execFileSync('ip', ['-n', R, 'link', 'set', dev, 'up']);
    const wrapper = join(dir, 'nft');
    // A batch's lines are kept too (the last run's): what nft was given.
    writeFileSync(
      wrapper,
      `#!/bin/sh\necho "$*" >> ${runsFile}\n` +
        `if [ "$*" = "-f -" ]; then tee ${lastScript} | ip netns exec ${R} nft "$@"; exit $?; fi\n` +
        `exec ip netns exec ${R} nft "$@"\n`,
      { mode: 0o755 },
    );
    writeFileSync(runsFile, '');
    writeFileSync(arpFile, ARP);
    // conntrack notes what the kernel holds at that moment: the gate's set, the quota and the counters.
    const conntrack = join(dir, 'conntrack');
    const look = (what: string): string => `ip netns exec ${R} nft list ${what} 2>&1`;
    const lookAll = [
      look('set inet sluice_portal paid'),
      look('quotas table netdev sluice_quota'),
      look('map netdev sluice_count cdown'),
    ].join('; ');
    writeFileSync(
      conntrack,
      `#!/bin/sh\n{ echo "conntrack $*"; ${lookAll}; } >> ${atFlush}\nexec ip netns exec ${R} conntrack "$@"\n`,
      {
        mode: 0o755,
      },
    );
    writeFileSync(atFlush, '');
    const uci = [
      "config sluice 'main'",
      "\toption portal 'sluice'",
      `\toption nft '${wrapper}'`,
      "\toption shape_device 'lan'",
      `\toption state_dir '${dir}'`,
      `\toption ndsctl_socket '${join(dir, 'gate.sock')}'`,
      "config pricing 'data'\n\toption metric 'bytes'\n\toption step_size '1'\n\toption price_per_step '1'",
      "config http 'http'\n\toption listen '10.78.0.1:2122'",
      '',
    ].join('\n');
    const { config } = configFromUciPartial(parseUci(uci), { hostname: 'r' });
    const sessions = { byMac: () => null, list: () => [] } as unknown as SessionReadView;
    portal = await openPortal(config, sessions, silentLogger, {
      shaping: false,
      hotspot: { devices: ['lan'], source: 'shape_device', problem: null },
      facts: { exists: () => true, masterOf: () => null },
      // A file, as /proc/net/arp: each read is the file's open and read on libuv's pool.
      neighbours: () => readFile(arpFile, 'utf8'),
      conntrack: [join(dir, 'conntrack')],
    });
    await portal.ownGate!.start();
    await startCounting(portal, sessions, []);
    assert.ok(await portal.kernelQuota!.start());
  });
  test.after(async () => {
    await portal?.closeWatches();
    await portal?.valve.destroy();
    sharedCommandShell().close();
    sharedCommandShell('flows').close();
    spawnSync('ip', ['netns', 'del', R]);
    rmSync(dir, { recursive: true, force: true });
  });

  const paid = (): string => inR('nft', 'list', 'set', 'inet', 'sluice_portal', 'paid');
  const quotas = (): string => inR('nft', 'list', 'quotas', 'table', 'netdev', 'sluice_quota');
  const counted = (): string => inR('nft', 'list', 'map', 'netdev', 'sluice_count', 'cdown');
  const ipv6Open = (): string => inR('nft', 'list', 'set', 'netdev', 'sluice_gate', 'open');
  const quotaOf = (mac: string): string => `q_${mac.replaceAll(':', '')}`;
  /**
   * The closes' settles (their quota and counters go in a run of their own OFFLOAD_SETTLE_MS later): waited for, so
   * that the next test counts only its own runs (a settle lands about a second into the next test, within its grants
   * when they are slow under load).
   */
  const settled = (macs: readonly string[]): Promise<void> =>
    until(() => macs.every((m) => !quotas().includes(quotaOf(m))), 30_000, 'the closes settled', 100);

  test('a grant is one nft run: the gate, its quota, its counters and its IPv6 together', async () => {
    const valve = portal.gateParts.valve;
    const before = runs();
    assert.is(await valve.open(A, { dataBytes: 500_000 }), 'opened');
    assert.is(runs() - before, 1, 'one nft run for the opening');
    assert.match(paid(), `${A} . 10.78.0.101`);
    assert.match(quotas(), quotaOf(A));
    assert.match(counted(), A);
    assert.match(ipv6Open(), A);
    assert.is(valve.lastIp?.(A), '10.78.0.101');

    const again = runs();
    assert.is(await valve.open(A, { dataBytes: 400_000 }), 'already-open');
    assert.is(runs() - again, 1, 'open already: a new quota and counting epoch, in one run');
  });

  test('a close keeps its quota and counters until its flows are deleted; they go after, in one run', async () => {
    const valve = portal.gateParts.valve;
    writeFileSync(atFlush, '');
    const before = runs();
    assert.equal(await valve.closeAndLook!(A), { result: 'closed', state: null });
    assert.is(runs() - before, 1, 'one nft run for the close: the gate and its IPv6');
    assert.not.match(paid(), A);
    assert.not.match(ipv6Open(), A);
    // At each conntrack delete (an offloaded flow skips the gate's forward chain, not the netdev hooks): the gate
    // closed, the device's quota and counters still in place (what its flow moves is counted and braked).
    const flushes = readFileSync(atFlush, 'utf8').split(/(?=^conntrack )/m);
    assert.ok(flushes.length >= 2, `conntrack ran (${flushes.length}): ${flushes.join('')}`);
    for (const f of flushes) {
      assert.match(f, /^conntrack -D /);
      assert.not.match(f.split('table netdev sluice_quota')[0]!, A, 'the gate closed first');
      assert.match(f, quotaOf(A), 'its quota still there');
      assert.match(f.slice(f.indexOf('map cdown')), A, 'its counters still there');
    }
    // Then (a flowtable let go of its flows): the quota and the counters go, one more run.
    // A hang guard: the settle comes seconds after a close.
    await until(() => !quotas().includes(quotaOf(A)), 30_000, 'the quota went after the flows', 100);
    assert.not.match(counted(), A);
    assert.is(runs() - before, 2, 'the quota and the counters went in one run');
    assert.is(await valve.close(A), 'not-found');
  });

  test('grants that arrive together share nft runs', async () => {
    const valve = portal.gateParts.valve;
    const together = MACS.slice(1, 6);
    const before = runs();
    const results = await Promise.all(together.map((m) => valve.open(m, { dataBytes: 100_000 })));
    assert.equal(
      results,
      together.map(() => 'opened'),
    );
    const made = runs() - before;
    assert.ok(made < together.length, `${together.length} grants in ${made} nft runs`);
    for (const m of together) assert.match(paid(), m);
    const closing = runs();
    await Promise.all(together.map((m) => valve.close(m)));
    assert.ok(runs() - closing < together.length, 'closes that arrive together share runs too');
    for (const m of together) assert.not.match(paid(), m);
    await settled(together);
  });

  test('grants of one moment go to nft in one run: their reads of the neighbour table are one', async () => {
    const valve = portal.gateParts.valve;
    const together = MACS.slice(1, 8);
    const before = runs();
    const results = await Promise.all(together.map((m) => valve.open(m, { dataBytes: 100_000 })));
    assert.equal(
      results,
      together.map(() => 'opened'),
    );
    assert.is(runs() - before, 1, `${together.length} grants of one moment in one nft run`);
    for (const m of together) assert.match(paid(), m);
    await Promise.all(together.map((m) => valve.close(m)));
    for (const m of together) assert.not.match(paid(), m);
    await settled(together);
  });

  test("fresh devices' grants of one moment: each set's elements are one command of that run", async () => {
    const valve = portal.gateParts.valve;
    const fresh = MACS.slice(8);
    const before = runs();
    const results = await Promise.all(fresh.map((m) => valve.open(m, { dataBytes: 100_000 })));
    assert.equal(
      results,
      fresh.map(() => 'opened'),
    );
    assert.is(runs() - before, 1);
    // The quota's and the counters' two maps, the IPv6 gate's set, the own gate's two: seven commands, not 7 × 4.
    const adds = readFileSync(lastScript, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('add element '));
    assert.is(adds.length, 7, adds.join('\n'));
    for (const line of adds) for (const m of fresh) assert.match(line, m);
    for (const m of fresh) {
      assert.match(paid(), m);
      assert.match(quotas(), quotaOf(m));
      assert.match(counted(), m);
      assert.match(ipv6Open(), m);
    }
    await Promise.all(fresh.map((m) => valve.close(m)));
    for (const m of fresh) assert.not.match(paid(), m);
    await settled(fresh);
  });

  test('refused: a module whose table went is made again; a gate that cannot open takes all back', async () => {
    const valve = portal.gateParts.valve;
    inR('nft', 'delete', 'table', 'netdev', 'sluice_count');
    assert.is(
      await valve.open(B, { dataBytes: 100_000 }),
      'opened',
      'the counters rebuilt their table, the gate opened',
    );
    assert.match(counted(), B);
    assert.match(paid(), B);

    const G = MACS[6]!;
    inR('nft', 'delete', 'table', 'inet', 'sluice_portal');
    const err = await valve.open(G, { dataBytes: 100_000 }).then(
      () => null,
      (e: unknown) => toSluiceError(e),
    );
    assert.is(err?.code, 'ERR_GATE_NFT', String(err?.message));
    assert.match(err!.message, /opening of 02:00:00:00:0d:07 was refused by nft/);
    assert.not.match(quotas(), quotaOf(G), 'its quota taken back');
    assert.not.match(counted(), G, 'its counters taken back');
    assert.not.match(ipv6Open(), G, 'its IPv6 closed');
    assert.match(quotas(), quotaOf(B), 'the others kept theirs');
    assert.not.ok(portal.ownGate!.gate.isOpen(G));
  });
}

test.run();
