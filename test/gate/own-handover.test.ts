// tier: daemon
/**
 * The holder closes first under `portal 'sluice'` (docs/roaming.md): a venue release at a router on sluice's own gate,
 * against the real nft in network namespaces, a device in a namespace of its own sending real packets through the
 * router's LAN device. The release's close takes the device out of the gate's set and deletes its flows, then reads
 * its kernel counters, and what they show past the meter's last reading is billed to the session before it ends
 * `moved`; a re-open asked meanwhile (the meter finding a paying client closed) leaves the gate closed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Portal } from '../../src/gate/portal.ts';
import { Gatekeeper } from '../../src/gate/gatekeeper.ts';
import { silentLogger } from '../../src/log.ts';
import { Emitter, type Session } from '../../src/sessions/index.ts';
import type { SessionEvents } from '../../src/sessions/manager-types.ts';
import { addSinks, SinkHost } from '../../src/upstream/index.ts';
import { lacking, skipTest } from '../helpers/skip.ts';
import { startOwnGate, type OwnGate, type OwnGateConfig } from './own-gate-rig.ts';

const A = '02:00:00:00:0e:01';
const ARP = [
  'IP address       HW type     Flags       HW address            Mask     Device',
  `10.79.0.101      0x1         0x2         ${A}     *        lan`,
].join('\n');

const lacks = lacking(['root', 'nft', 'ip']);
if (lacks) {
  skipTest(test, "portal 'sluice': a release's close reads the last counters", lacks, { ciInstalls: true });
} else {
  const id = randomBytes(3).toString('hex');
  const R = `oh-${id}-r`;
  const C = `oh-${id}-c`;
  const dir = mkdtempSync(join(tmpdir(), 'own-handover-'));
  const inR = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', R, ...args], { encoding: 'utf8' });
  let portal: Portal;
  let gate: OwnGate | undefined;

  test.before(async () => {
    execFileSync('ip', ['netns', 'add', R]);
    execFileSync('ip', ['netns', 'add', C]);
    execFileSync('ip', ['-n', R, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'dev0', 'netns', C]);
    execFileSync('ip', ['-n', C, 'link', 'set', 'dev0', 'address', A]);
    execFileSync('ip', ['-n', R, 'addr', 'add', '10.79.0.1/24', 'dev', 'lan']);
    execFileSync('ip', ['-n', C, 'addr', 'add', '10.79.0.101/24', 'dev', 'dev0']);
    for (const [ns, dev] of [
      [R, 'lan'],
      [C, 'dev0'],
      [R, 'lo'],
      [C, 'lo'],
    ] as const)
      execFileSync('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    gate = await startOwnGate(dir, R, ARP, {
      main: ["\toption venue 'hall'"],
      sections: ["config http 'http'\n\toption listen '10.79.0.1:2122'"],
    });
    ({ portal, config } = gate);
  });
  test.after(async () => {
    await gate?.close();
    spawnSync('ip', ['netns', 'del', R]);
    spawnSync('ip', ['netns', 'del', C]);
    rmSync(dir, { recursive: true, force: true });
  });
  let config: OwnGateConfig;

  const paid = (): string => inR('nft', 'list', 'set', 'inet', 'sluice_portal', 'paid');
  /**
   * `n` UDP datagrams of 1000 IP bytes each from the device to the router (its uploads, counted at the LAN's ingress).
   */
  const send = (n: number): void => {
    const script =
      `const s = require('node:dgram').createSocket('udp4'); let i = 0;` +
      `const next = () => i++ < ${n} ? s.send(Buffer.alloc(972), 9, '10.79.0.1', next) : s.close(); next();`;
    execFileSync('ip', ['netns', 'exec', C, process.execPath, '-e', script]);
  };

  test("the release's close bills the bytes after the last reading and holds the gate against a re-open", async () => {
    let s = {
      id: '00000000000000e1',
      mac: A,
      state: 'ACTIVE',
      metric: 'bytes',
      allotment: 8n * 1048576n,
      used: 1000,
      bytes: 1000,
      payments: [],
      endCause: null,
      endedAt: null,
      expiresAt: null,
      rates: null,
      maxDevices: 1,
      devices: [],
      user: null,
      plan: null,
    } as unknown as Session;
    const events = new Emitter<SessionEvents>(() => undefined);
    const billed: number[] = [];
    const sessions = {
      on: events.on.bind(events),
      byMac: () => s,
      get: () => s,
      list: () => (s.state === 'ACTIVE' ? [s] : []),
      noteIp: () => undefined,
      startClock: async () => undefined,
      end: async () => {
        s = { ...s, state: 'TERMINATED', endCause: 'moved', endedAt: Date.now() } as Session;
        events.emit('ended', s);
        return s;
      },
      applyUsage: (_ids: string[], bytes: number[]) => {
        billed.push(bytes[0]!);
        s = { ...s, used: s.used + bytes[0]!, bytes: s.bytes + bytes[0]! } as Session;
        return [];
      },
      reportUsage: () => undefined,
    };
    const gates = new Gatekeeper({ ...portal.gateParts, sessions: sessions as never, log: silentLogger });
    assert.is(await portal.gateParts.valve.open(A, { dataBytes: 8 * 1048576 }), 'opened');
    send(5);
    // The meter's last reading: the counters as they stand now.
    const last = (await portal.counters!.read(A))!;
    assert.ok(last.up >= 5000, `the device's uploads counted: ${last.up}`);
    send(20);

    let reopens = 0;
    const meter = {
      tick: async () => undefined,
      marks: () => new Map([[A, { token: last.epoch, down: last.down, up: last.up }]]),
    };
    const venue = (await addSinks(config, new SinkHost({ log: silentLogger }), {
      ...{ log: silentLogger, recovered: () => ({ ended: [] }), status: () => null, command: async () => null },
      sessions: sessions as never,
      meter: meter as never,
      gateClosed: (mac) => gates.closed(mac),
      tail: {
        gate: {
          closeAndCount: (mac, count) => {
            const closing = gates.closeAndCount(mac, count);
            // The meter finds the paying client closed while the close runs: the hold keeps it so.
            void gates.reopen(mac).then(() => reopens++);
            return closing;
          },
          handedBack: (mac) => gates.handedBack(mac),
        },
        counters: portal.counters!,
      },
    }))!;
    const reply = await venue.release({ mac: A, venue: 'hall', session: s.id, epoch: '1', to: 'rb', revoke: true });
    assert.is(reopens, 1);
    assert.not.match(paid(), A, 'the gate closed and stayed closed');
    console.log(
      `# billed at the close: ${billed.join(', ')} B (20 datagrams of 1000 IP bytes sent after the last reading)`,
    );
    assert.is(billed.length, 1, `the bytes after the last reading billed once: ${JSON.stringify(billed)}`);
    assert.ok(billed[0]! >= 20 * 1000, `20 datagrams of 1000 B after the last reading: ${billed[0]}`);
    assert.is(reply['used'], String(1000 + billed[0]!), 'the reply carries the final reading');
    assert.is(s.endCause, 'moved');
    venue.close();
  });
}

test.run();
