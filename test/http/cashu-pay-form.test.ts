// tier: fast
// The pay page's Cashu card (files/usr/share/sluice/portal/cashu-page.js) in the fake DOM, its answers staged: the
// total beside "How many" is the chosen quantity's, as the customer types it and for the invoice the router made —
// never the first offer's ("1 min for 2 sat" beside "How many: 3", docs/pay-page/cashu-4-invoice.png).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPage, type FetchHandler } from './fake-dom.ts';

const OFFER = {
  plan: 'time',
  metric: 'seconds',
  step_size: '60',
  unit: 'sat',
  price_per_step: '2',
  min_steps: '1',
  max_steps: '60',
  mints: ['https://mint.example'],
  steps: '1',
  payment_request: 'creqAlab',
  lightning: true,
};

/** The router: the offer for any steps, an invoice for the steps asked, an unpaid quote; `offers` counts the GETs. */
function router(seen: { offers: number; invoiceSteps?: string }): FetchHandler {
  return (path, init) => {
    const m = /^\/cashu\/offer(?:\?steps=(\d+))?$/.exec(path);
    if (m) {
      seen.offers++;
      return { status: 200, body: { ...OFFER, steps: m[1] ?? OFFER.min_steps } };
    }
    if (path === '/cashu/lightning' && init.method === 'POST') {
      const steps = String((JSON.parse(String(init.body)) as { steps: string }).steps);
      seen.invoiceSteps = steps;
      const amount = String(BigInt(steps) * 2n);
      return { status: 200, body: { quote: 'q1', request: 'lnbcrt1lab', amount, expiry: null, steps } };
    }
    if (path.startsWith('/cashu/lightning?')) return { status: 200, body: { quote: 'q1', state: 'unpaid' } };
    return { status: 404, body: { error: { code: 'ERR_NOT_FOUND', message: 'not here' } } };
  };
}

test("the total follows the quantity as it is typed, and is the invoice's own once the router made one", async () => {
  const seen = { offers: 0 } as { offers: number; invoiceSteps?: string };
  const page = await loadPage({ handler: router(seen) });
  const card = page.byId('cashu-section');
  const byId = (id: string) => card.all().find((e) => e.getAttribute('id') === id)!;
  assert.is(byId('cashu-total').textContent, '1 min for 2 sat');
  // The customer types 3: no blur, no change event yet, and the router not asked again.
  const steps = byId('cashu-steps');
  steps.value = '3';
  steps.dispatch('input');
  assert.is(byId('cashu-total').textContent, '3 min for 6 sat', 'as it is typed');
  await page.settle();
  assert.ok(
    page.fetches.some((f) => f.path === '/cashu/offer?steps=3'),
    "the wallet's payment request asked anew",
  );
  byId('lightning-pay').dispatch('click');
  await page.settle();
  assert.is(seen.invoiceSteps, '3');
  assert.is(byId('cashu-total').textContent, '3 min for 6 sat', 'the invoice asked for 3');
  // Something that is not a quantity leaves the last total standing.
  steps.value = 'x';
  steps.dispatch('input');
  assert.is(byId('cashu-total').textContent, '3 min for 6 sat');
});

test('an invoice refused for the open-invoice limits says so, not "being confirmed"', async () => {
  const page = await loadPage({
    handler: (path, init) => {
      if (path.startsWith('/cashu/offer')) return { status: 200, body: OFFER };
      if (path === '/cashu/lightning' && init.method === 'POST')
        return { status: 402, body: { error: { code: 'ERR_PAYMENT_IN_PROGRESS', message: 'too many' } } };
      return { status: 404, body: { error: { code: 'ERR_NOT_FOUND', message: 'not here' } } };
    },
  });
  const card = page.byId('cashu-section');
  card
    .all()
    .find((e) => e.getAttribute('id') === 'lightning-pay')!
    .dispatch('click');
  await page.settle();
  assert.match(page.byId('message').textContent, /Too many Lightning invoices are open/);
});

test.run();
