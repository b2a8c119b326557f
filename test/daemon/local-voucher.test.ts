// tier: daemon
/**
 * Printed vouchers under the real daemon (docs/vouchers.md): a batch made over ubus survives a kill -9 before any
 * redemption; a router with only printed vouchers (no RADIUS, no x402) then runs the LAN endpoint and its voucher
 * form; a code redeemed on the pay page's door, then the daemon killed -9, is still used after the restart (refused on
 * the page and over ubus for another device); wrong codes are limited with a 429 that says to wait; a damaged book
 * fails closed (503 on the page, ERR_VOUCHER_STORE over ubus), the rest of the daemon running.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonLab } from './harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection } from '../helpers/uci-sections.ts';

const PAGE_MAC = '02:00:00:00:1a:01';
const OTHER_MAC = '02:00:00:00:1a:02';

async function post(base: string, path: string, body: unknown) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as Record<string, any>,
  };
}

test('printed vouchers: made, kill -9, redeemed on the page, kill -9, still used; guesses limited', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const lab = await DaemonLab.create({ portalSocket: true, extraConfig: httpSection(port) });
  try {
    lab.portal.addClient(PAGE_MAC, '127.0.0.1');
    lab.portal.addClient(OTHER_MAC, '10.9.9.2');
    await lab.startDaemon();
    // Nothing else to serve: no LAN endpoint yet (the book does not exist).
    assert.ok(lab.output.includes('nothing is served over it'));
    const made = await lab.call('voucher_create', { plan: 'time', count: 3, steps: 30, note: 'counter' });
    const codes = made.codes as string[];
    assert.is(codes.length, 3);
    assert.is(statSync(join(lab.dir, 'state', 'vouchers.log')).mode & 0o777, 0o600);

    // kill -9 before any redemption: the batch is on flash, every code sells.
    await lab.stopDaemon('SIGKILL');
    await lab.reconnectClient();
    await lab.startDaemon();
    assert.match(lab.output, /LAN endpoint listening.*serves.*vouchers/);
    const plans = (await (await fetch(`${base}/`)).json()) as { methods: { voucher: boolean } };
    assert.is(plans.methods.voucher, true, 'the page shows its voucher form');

    const sold = await post(base, '/voucher', { code: codes[0]!.toLowerCase() });
    assert.is(sold.status, 200, JSON.stringify(sold.body));
    assert.is(sold.body.session.mac, PAGE_MAC);
    assert.is(sold.body.session.allotment, '1800');
    assert.is(sold.body.session.plan, 'time');
    const reference = ((await lab.session(PAGE_MAC)).payments as Array<{ reference: string }>)[0]!.reference;
    assert.match(reference, new RegExp(`^${made.batch as string}/[0-9a-f]{32}$`), 'the batch rides with the payment');

    // kill -9 after the redemption: the code stays used, on the page and over ubus, for any device.
    await lab.stopDaemon('SIGKILL');
    await lab.reconnectClient();
    await lab.startDaemon();
    const again = await post(base, '/voucher', { code: codes[0] });
    assert.is(again.status, 402);
    assert.is(again.body.error.code, 'ERR_PAYMENT_REPLAYED');
    const other = await lab.callStatus('purchase', { mac: OTHER_MAC, payment: { method: 'voucher', code: codes[0]! } });
    assert.ok(other.status !== 0);
    assert.is((other.data as { error: { code: string } }).error.code, 'ERR_PAYMENT_REPLAYED');
    // Another code of the batch still sells over ubus.
    const second = await lab.call('purchase', { mac: OTHER_MAC, payment: { method: 'voucher', code: codes[1]! } });
    assert.is((second.session as { allotment: string | number }).allotment.toString(), '1800');
    const [batch] = (await lab.call('voucher_list')).batches as Array<Record<string, unknown>>;
    assert.equal(
      [batch!.id, batch!.used, batch!.unused, batch!.expired, batch!.note],
      [made.batch, 2, 1, 0, 'counter'],
    );
    assert.not.ok(JSON.stringify(await lab.call('voucher_list')).includes(codes[2]!), 'the list never shows a code');

    // Guessing: five wrong codes a minute, then 429 with the wait, even for the right code.
    for (let i = 0; i < 5; i++)
      assert.is(
        (await post(base, '/voucher', { code: `2222-2222-${i + 2}${i + 2}` })).body.error.code,
        'ERR_VOUCHER_REJECTED',
      );
    const limited = await post(base, '/voucher', { code: codes[2] });
    assert.is(limited.status, 429);
    assert.is(limited.body.error.code, 'ERR_VOUCHER_GUESS_LIMIT');
    assert.match(limited.body.error.message, /wait \d+ seconds/);
    assert.ok(Number(limited.retryAfter) > 0, 'Retry-After');

    // Revoked: the last code sells no more.
    assert.equal(await lab.call('voucher_revoke', { batch: made.batch as string }), { batch: made.batch, revoked: 1 });
    const revoked = await lab.callStatus('purchase', {
      mac: '02:00:00:00:1a:03',
      payment: { method: 'voucher', code: codes[2]! },
    });
    assert.is((revoked.data as { error: { code: string } }).error.code, 'ERR_VOUCHER_REJECTED');
  } finally {
    await lab.close();
  }
});

test(
  'a damaged book fails closed: printed vouchers left out (503 on the page, ERR_VOUCHER_STORE over ubus), the ' +
    'rest runs, no code sells',
  async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const lab = await DaemonLab.create({ portalSocket: true, extraConfig: httpSection(port) });
    try {
      lab.portal.addClient(PAGE_MAC, '127.0.0.1');
      await lab.startDaemon();
      const [code] = (await lab.call('voucher_create', { plan: 'time', count: 1, steps: 1 })).codes as string[];
      await lab.stopDaemon('SIGTERM');
      const book = join(lab.dir, 'state', 'vouchers.log');
      writeFileSync(book, readFileSync(book).subarray(0, -3));
      await lab.startDaemon();
      assert.match(lab.output, /payment method voucher unavailable/);
      const plans = (await (await fetch(`${base}/`)).json()) as {
        methods: { voucher: boolean; unavailable: string[] };
      };
      assert.equal(
        [plans.methods.voucher, plans.methods.unavailable],
        [false, ['voucher']],
        'no voucher form, the page can say why',
      );
      const refused = await post(base, '/voucher', { code });
      assert.equal([refused.status, refused.body.error.code], [503, 'ERR_PAYMENT_METHOD_UNAVAILABLE']);
      const listed = await lab.callStatus('voucher_list');
      assert.is((listed.data as { error: { code: string } }).error.code, 'ERR_VOUCHER_STORE');
      const bought = await lab.callStatus('purchase', { mac: PAGE_MAC, payment: { method: 'voucher', code: code! } });
      assert.is((bought.data as { error: { code: string } }).error.code, 'ERR_UNKNOWN_PAYMENT_METHOD');
      assert.ok((await lab.call('stats')) !== undefined, 'the daemon runs');
    } finally {
      await lab.close();
    }
  },
);

test.run();
