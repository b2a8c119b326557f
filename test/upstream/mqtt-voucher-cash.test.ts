// tier: peers; needs mosquitto
/**
 * The counter's cash counted (docs/vouchers.md "Price"), on the real daemon and a real mosquitto: a batch printed
 * over ubus with a price, one of its codes redeemed, another batch revoked: `sales` has the sold ticket's price in its
 * currency under method `voucher`, the MQTT `started` message carries it (amount, asset, the batch in the reference),
 * and the revoked and unsold codes are no revenue anywhere.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonLab } from '../daemon/harness.ts';
import { Mosquitto } from '../peers/mosquitto.ts';
import { Subscriber } from './mqtt-rig.ts';

const A = '02:00:00:00:3c:01';
const B = '02:00:00:00:3c:02';

test('a priced batch redeemed: its price in `sales` and in the MQTT report; a revoked code none', async () => {
  const broker = await Mosquitto.create();
  const sub = await Subscriber.connect(broker.url);
  const lab = await DaemonLab.create({
    pollInterval: 0.3,
    portalSocket: true,
    extraConfig: `
config mqtt 'mqtt'
\toption enabled '1'
\toption url '${broker.url}'
`,
  });
  try {
    lab.portal.addClient(A, '10.0.0.31');
    lab.portal.addClient(B, '10.0.0.32');
    await lab.startDaemon();
    const priced = await lab.call('voucher_create', {
      plan: 'time',
      count: 2,
      steps: 30,
      price: '250',
      currency: 'EUR',
    });
    assert.equal(priced.price, { amount: '250', currency: 'EUR', decimals: 2 });
    const revoked = await lab.call('voucher_create', {
      plan: 'time',
      count: 1,
      steps: 30,
      price: '400',
      currency: 'EUR',
    });
    await lab.call('voucher_revoke', { batch: revoked.batch as string });
    const sold = await lab.call('purchase', {
      mac: A,
      payment: { method: 'voucher', code: (priced.codes as string[])[0]! },
    });
    assert.ok(sold.session, JSON.stringify(sold));
    const refused = await lab.callStatus('purchase', {
      mac: B,
      payment: { method: 'voucher', code: (revoked.codes as string[])[0]! },
    });
    assert.is(
      (refused.data?.error as Record<string, unknown> | undefined)?.code ?? refused.data?.code,
      'ERR_VOUCHER_REJECTED',
      JSON.stringify(refused),
    );

    const sales = await lab.call('sales', { since: 0 });
    assert.equal(
      (sales.totals as Array<Record<string, unknown>>).filter((t) => t.method === 'voucher'),
      [{ method: 'voucher', asset: 'EUR', amount: '250', payments: 1 }],
      'one ticket of 2.50 EUR; the revoked and the unsold nothing',
    );
    await sub.waitFor(
      () => sub.on('session').some((m) => m.body['event'] === 'started'),
      15_000,
      'the started message',
    );
    const started = sub.on('session').filter((m) => m.body['event'] === 'started');
    assert.is(started.length, 1, 'one sale reported');
    const payment = started[0]!.body['payment'] as Record<string, unknown>;
    assert.equal([payment['method'], String(payment['amount']), payment['asset']], ['voucher', '250', 'EUR']);
    assert.match(String(payment['reference']), new RegExp(`^${priced.batch as string}/[0-9a-f]{32}$`));
  } finally {
    await sub.close();
    await lab.close();
    await broker.close();
  }
});

test.run();
