// tier: daemon
/**
 * Fuzz: every method of the `sluice` object driven with random and hostile arguments through
 * the real broker, against the real daemon binary and the stand-in portal (over its control socket). Seeded
 * (SLUICE_FUZZ_SEED, SLUICE_FUZZ_CALLS) so a failure replays. Invariants checked after every call:
 *   - the daemon never crashes and keeps answering;
 *   - every refusal carries a body {error: {code: ERR_…}} with its non-zero status, and changes no session;
 *   - allotments add up: each session's allotment is exactly the sum of the grants acknowledged for it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { prng } from '../../src/prng.ts';
import type { BlobmsgTable, BlobmsgValue } from '../../src/ubus/codec/index.ts';
import { DaemonLab } from './harness.ts';

const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? 1414);
const CALLS = Number(process.env.SLUICE_FUZZ_CALLS ?? 400);
const METHODS = ['purchase', 'quote', 'session', 'sessions', 'terminate', 'grant', 'logout', 'pricing', 'stats'];
const GOOD_MACS = Array.from({ length: 6 }, (_, i) => `02:00:00:00:1f:0${i}`);
const BAD_MACS = [
  'ff:ff:ff:ff:ff:ff',
  '01:00:5e:00:00:01',
  '00:00:00:00:00:00',
  'zz',
  '',
  '02:00:00:00:1f',
  '02-00:00:00:1f:00',
  '02:00:00:00:1f:00\n',
  ' 02:00:00:00:1f:00',
];
const ARG_NAMES = [
  'mac',
  'seconds',
  'bytes',
  'ip',
  'user',
  'plan',
  'amount',
  'steps',
  'payment',
  'id',
  'state',
  'cause',
  'offset',
  'limit',
  'idempotency_key',
  'x',
];

test(
  `fuzz: ${CALLS} calls with hostile arguments (seed ${SEED}): no crash, every refusal coded and harmless, ` +
    'allotments add up',
  async () => {
    const random = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const hostile = (depth = 0): BlobmsgValue => {
      switch (Math.floor(random() * 16)) {
        case 0:
          return pick(GOOD_MACS);
        case 1:
          return pick(BAD_MACS);
        case 2:
          return Math.floor(random() * 2 ** 31) * (random() < 0.3 ? -1 : 1);
        case 3:
          return BigInt(Math.floor(random() * 2 ** 53)) * (random() < 0.5 ? 1n : 2n ** 10n);
        case 4:
          return pick([' 60 ', '60\n', '0060', '1e3', '60.0', '-1', '', '0', '9'.repeat(60), '0x10', 'NaN']);
        case 5:
          return 'A'.repeat(Math.floor(random() * 400));
        case 6:
          return pick(['\u0000', '\u202e', '💸', '"; rm -rf /', '%s%n', '../../etc/passwd']);
        case 7:
          return random() < 0.5;
        case 8:
          return null;
        case 9:
          return depth > 2 ? 'deep' : [hostile(depth + 1), hostile(depth + 1)];
        case 10:
          return depth > 2
            ? {}
            : {
                method: pick(['grant', 'voucher', 'x402', 'cash', '']),
                code: hostile(depth + 1),
                idempotency_key: hostile(depth + 1),
              };
        case 11:
          return pick(['ACTIVE', 'LIVE', 'ENDED', 'admin', 'data', 'time', 'nope']);
        case 12:
          return pick(['10.0.0.1', 'fe80::1', '10.0.0.256', '1'.repeat(46)]);
        case 13:
          return Math.floor(random() * 5000) + 1;
        case 14:
          return 60.5;
        default:
          return `k-${Math.floor(random() * 20)}`;
      }
    };
    const argsFor = (method: string): BlobmsgTable => {
      const args: BlobmsgTable = {};
      // Mostly plausible shapes (so successes happen and top-ups, terminates and replays are exercised), some pure
      // noise.
      if (random() < 0.8 && ['purchase', 'session', 'terminate', 'grant'].includes(method))
        args.mac = random() < 0.85 ? pick(GOOD_MACS) : pick(BAD_MACS);
      if (method === 'grant' && random() < 0.8)
        args[random() < 0.5 ? 'seconds' : 'bytes'] = random() < 0.8 ? Math.floor(random() * 100_000) + 3600 : hostile();
      if (method === 'grant' && random() < 0.3)
        args.idempotency_key = random() < 0.8 ? `idem-${Math.floor(random() * 30)}` : hostile();
      const extra = Math.floor(random() * 4);
      for (let i = 0; i < extra; i++) args[pick(ARG_NAMES)] = hostile();
      return args;
    };

    const lab = await DaemonLab.create({ pollInterval: 1, portalSocket: true });
    const counts = { calls: 0, ok: 0, refused: 0, byCode: {} as Record<string, number> };
    /** Acknowledged allotment per session id (sum of the grants whose reply said so). */
    const granted = new Map<string, bigint>();
    try {
      await lab.startDaemon();
      const snapshot = async (): Promise<string> => {
        const r = await lab.call('sessions', { limit: 500 });
        const list = (r.sessions as Array<{ id: string; allotment: string | number | bigint; state: string }>)
          .map(
            (s) =>
              `${s.id}:${String(s.allotment)}:${s.state === 'TERMINATED' ? 'T' : s.state === 'EXPIRED' ? 'E' : 'L'}`,
          )
          .sort();
        return list.join(',');
      };
      for (let n = 0; n < CALLS; n++) {
        const method = pick(METHODS);
        const args = argsFor(method);
        const mutates = ['purchase', 'terminate', 'grant', 'logout'].includes(method);
        const before = mutates ? await snapshot() : '';
        const r = await lab.callStatus(method, args);
        counts.calls++;
        const what = `${method} ${JSON.stringify(args, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`;
        if (r.status === 0) {
          counts.ok++;
          if (method === 'grant') {
            const session = r.data!.session as { id: string };
            const add = BigInt((args.seconds ?? args.bytes) as number | bigint);
            granted.set(session.id, (granted.get(session.id) ?? 0n) + add);
          }
          continue;
        }
        counts.refused++;
        const error = (r.data as { error?: { code?: unknown } } | undefined)?.error;
        assert.type(error?.code, 'string', `refusal without a code: ${what} → status ${r.status}`);
        assert.match(error!.code as string, /^ERR_[A-Z0-9_]+$/);
        counts.byCode[error!.code as string] = (counts.byCode[error!.code as string] ?? 0) + 1;
        if (mutates) {
          // Expiries may happen meanwhile (they turn L into E); nothing else may change on a refusal.
          const after = await snapshot();
          assert.is(
            after.replace(/:L/g, ':E'),
            before.replace(/:L/g, ':E'),
            `a refused call changed sessions: ${what}`,
          );
          assert.ok(after.split(',').length === before.split(',').length, `a refused call changed sessions: ${what}`);
        }
        assert.is(lab.daemon!.exitCode, null, `daemon exited after ${what}`);
      }
      // Allotments add up to what was acknowledged.
      const all = (await lab.call('sessions', { limit: 500 })).sessions as Array<{
        id: string;
        allotment: string | number | bigint;
      }>;
      for (const s of all)
        assert.is(
          BigInt(s.allotment as string),
          granted.get(s.id) ?? -1n,
          `session ${s.id}: allotment ≠ sum of acknowledged grants`,
        );
      assert.is(all.length, granted.size, 'every acknowledged grant has its session');
      assert.ok(await lab.call('stats'));
      assert.is(lab.daemon!.exitCode, null);
      assert.ok(counts.ok > 20 && counts.refused > 100, `the fuzz reached both paths: ${JSON.stringify(counts)}`);
      console.log(
        `fuzz seed=${SEED}: ${counts.calls} calls, ${counts.ok} ok, ${counts.refused} refused, ${granted.size} ` +
          `sessions; codes ${JSON.stringify(counts.byCode)}`,
      );
    } finally {
      await lab.close();
    }
  },
);

test.run();
