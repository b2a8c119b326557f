// tier: fast
/**
 * ubus `change` with rate_down/rate_up: new rates for a live session from now, through the backend's one rate path
 * (changeRates: journaled, then the gate), checked like the config's rates; the direction not named keeps the
 * session's own; `session`/`sessions`/`change` replies show the session's rates (null: not limited).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { invokeMethod } from '../../src/api/object.ts';
import type { SluiceBackend } from '../../src/api/backend.ts';
import type { ClientRates } from '../../src/portal/index.ts';
import type { Session } from '../../src/sessions/index.ts';

const MAC = '02:00:00:00:0c:01';
const live: Session = {
  id: 'aaaaaaaaaaaaaaaa',
  mac: MAC,
  ip: '10.77.0.101',
  user: null,
  plan: 'slow',
  metric: 'seconds',
  allotment: 600n,
  used: 0,
  bytes: 0,
  createdAt: 1_000,
  startedAt: 1_000,
  expiresAt: 601_000,
  endedAt: null,
  state: 'ACTIVE',
  endCause: null,
  payments: [],
};

function backend(initial: ClientRates | null) {
  let session: Session = { ...live, ...(initial && { rates: initial }) };
  const changes: Array<[string, ClientRates]> = [];
  const b = {
    now: () => 2_000,
    session: (q: { mac?: string; id?: string }) => (q.mac === MAC || q.id === live.id ? session : undefined),
    changeRates: async (mac: string, r: ClientRates) => {
      changes.push([mac, r]);
      session = { ...session, rates: r };
      return session;
    },
    change: async () => {
      throw new Error('limits not asked for');
    },
  } as unknown as SluiceBackend;
  return { b, changes };
}

test('change rate_down: the shaper gets the new download rate, the upload kept; the reply shows both', async () => {
  const { b, changes } = backend({ downBps: 2_000_000, upBps: 1_000_000 });
  const reply = await invokeMethod(b, 'change', { mac: MAC, rate_down: '8mbit' });
  assert.equal(changes, [[MAC, { downBps: 8_000_000, upBps: 1_000_000 }]]);
  const session =
    (reply as { data?: { session?: Record<string, unknown> } }).data?.session ??
    (reply as { session?: Record<string, unknown> }).session;
  assert.is(session?.rate_down, 8_000_000);
  assert.is(session?.rate_up, 1_000_000);
});

test('change rate_up of a session without a tier: the download stays unlimited (null)', async () => {
  const { b, changes } = backend(null);
  const reply = await invokeMethod(b, 'change', { id: live.id, rate_up: '512kbit' });
  assert.equal(changes, [[MAC, { downBps: null, upBps: 512_000 }]]);
  const session =
    (reply as { data?: { session?: Record<string, unknown> } }).data?.session ??
    (reply as { session?: Record<string, unknown> }).session;
  assert.is(session?.rate_down, null);
  assert.is(session?.rate_up, 512_000);
});

test('change with a bad rate is refused before anything changes; no limit at all is refused too', async () => {
  const { b, changes } = backend({ downBps: 2_000_000, upBps: null });
  for (const bad of ['fast', '0', '2MiB', '99gbit']) {
    const r = await invokeMethod(b, 'change', { mac: MAC, rate_down: bad }).catch((e: { code?: string }) => e);
    const code = (r as { code?: string }).code ?? JSON.stringify(r);
    assert.match(String(code), /ERR_INVALID_ARGUMENT|INVALID_ARGUMENT/, bad);
  }
  const none = await invokeMethod(b, 'change', { mac: MAC }).catch((e: { code?: string }) => e);
  assert.match(JSON.stringify(none) + String((none as { code?: string }).code), /INVALID_ARGUMENT/);
  assert.equal(changes, []);
});

test('change rate_down none lifts the download limit (null), the upload kept', async () => {
  const { b, changes } = backend({ downBps: 2_000_000, upBps: 1_000_000 });
  await invokeMethod(b, 'change', { mac: MAC, rate_down: 'none' });
  assert.equal(changes, [[MAC, { downBps: null, upBps: 1_000_000 }]]);
});

test(
  'change with limits and rates: a limit the session cannot ' + 'take refuses the whole call before the rates change',
  async () => {
    // `live` is a time session: bytes is ERR_SESSION_METRIC_MISMATCH, found before the rates are touched.
    const { b, changes } = backend({ downBps: 2_000_000, upBps: null });
    const r = await invokeMethod(b, 'change', { mac: MAC, bytes: 1000n, rate_down: '8mbit' }).catch((e: unknown) => e);
    assert.match(JSON.stringify(r) + String((r as { code?: string }).code), /ERR_SESSION_METRIC_MISMATCH/);
    const big = await invokeMethod(b, 'change', { mac: MAC, seconds: 10n ** 15n, rate_down: '8mbit' }).catch(
      (e: unknown) => e,
    );
    assert.match(JSON.stringify(big) + String((big as { code?: string }).code), /ERR_INVALID_AMOUNT/);
    assert.equal(changes, []);
  },
);

test('change with limits and rates: the rates go first, the limits (which may end the session) last', async () => {
  const { b, changes } = backend({ downBps: 2_000_000, upBps: null });
  const order: string[] = [];
  const rates = b.changeRates!.bind(b);
  (b as { changeRates: unknown }).changeRates = async (mac: string, r: ClientRates) => {
    order.push('rates');
    return rates(mac, r);
  };
  (b as { change: unknown }).change = async (q: { id?: string }, l: { seconds?: bigint }) => {
    order.push(`limits ${q.id} ${l.seconds}`);
    return { ...live, rates: changes.at(-1)![1], allotment: l.seconds! };
  };
  await invokeMethod(b, 'change', { mac: MAC, seconds: 900n, rate_down: '8mbit' });
  assert.equal(order, ['rates', `limits ${live.id} 900`]);
});

test.run();
