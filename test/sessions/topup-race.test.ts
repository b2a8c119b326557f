// tier: fast
/**
 * A `topup` reply must never say `topped_up: true` for a session already TERMINATED by a racing terminate. The rule
 * (docs/operations.md, the same as for a purchase whose new session is ended while it is written): the terminate wins
 * and the session stays ended; the top-up that was already being written counts, and its reply shows the session as it
 * really is — ended, with the payment in its totals — so `topped_up: true` next to `TERMINATED` is the truth, not a
 * live session that is not there.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mac, payment, setup } from './helpers.ts';

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test(
  'a terminate racing a top-up wins: the reply shows ' + 'the session TERMINATED with the top-up in its totals',
  async () => {
    const { store, manager, events } = await setup();
    const first = await manager.activate({ mac: mac(90), metric: 'bytes', allotment: 1000n, payment: payment() });
    store.hold = true;
    const topup = manager.activate({ mac: mac(90), metric: 'bytes', allotment: 500n, payment: payment() });
    await settle();
    manager.endNow(first.session.id, 'admin');
    store.release();
    const r = await topup;
    assert.ok(r.toppedUp, 'the payment was applied');
    assert.is(r.session.id, first.session.id);
    assert.is(r.session.state, 'TERMINATED', 'the reply does not show a live session');
    assert.is(r.session.endCause, 'admin');
    assert.is(String(r.session.allotment), '1500');
    assert.is(r.session.paymentCount ?? r.session.payments.length, 2, 'the payment is on the ended session');
    assert.is(manager.byMac(mac(90))?.state, 'TERMINATED', 'no live session came back');
    assert.equal(events.ended, [first.session.id], 'ended once');
    await manager.close();
  },
);

test.run();
