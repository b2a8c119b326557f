// tier: fast
/**
 * The restart's payment replay (end-replay.ts lastPayments): the payments written within the window of the newest one,
 * oldest first, a session's first as its `started` and later ones as `topup`; older ones are not handed over again.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lastPayments, UNANNOUNCED_WINDOW_MS } from '../../src/sessions/end-replay.ts';
import type { PaymentRef, Session } from '../../src/sessions/index.ts';

const pay = (reference: string, at: number): PaymentRef => ({ method: 'grant', reference, amount: 0n, asset: '', at });

function session(id: string, payments: PaymentRef[]): Session {
  return {
    id,
    mac: '02:00:00:00:00:01',
    ip: null,
    user: null,
    plan: null,
    metric: 'seconds',
    allotment: 600n,
    used: 0,
    bytes: 0,
    createdAt: payments[0]?.at ?? 0,
    startedAt: payments[0]?.at ?? 0,
    expiresAt: null,
    endedAt: null,
    state: 'ACTIVE',
    endCause: null,
    payments,
  } as Session;
}

test('the payments of the last moments before a stop, oldest first, started or topup', () => {
  const t = 1_800_000_000_000;
  const old = session('a', [pay('a1', t - UNANNOUNCED_WINDOW_MS - 1)]);
  const topped = session('b', [pay('b1', t - UNANNOUNCED_WINDOW_MS - 5), pay('b2', t - 3)]);
  const fresh = session('c', [pay('c1', t)]);
  const none = session('d', []);
  const got = lastPayments(new Map([fresh, old, topped, none].map((s) => [s.id, s])).values());
  assert.equal(
    got.map((p) => [p.event, p.session.id, p.payment.reference]),
    [
      ['topup', 'b', 'b2'],
      ['started', 'c', 'c1'],
    ],
  );
  assert.equal(lastPayments([]), []);
});

test.run();
