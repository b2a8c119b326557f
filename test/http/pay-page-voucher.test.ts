// tier: fast
/**
 * The pay page and printed vouchers (docs/vouchers.md): a ticket's QR link (/portal?voucher=CODE) fills the code in
 * and redeems it at once, and drops it from the address; a code used already and too many wrong codes each get the
 * customer's own words (portal.js on the stand-in DOM, answers staged).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPage } from './fake-dom.ts';

const PLANS = {
  methods: { x402: false, voucher: true },
  plans: [
    {
      id: 'hour',
      metric: 'seconds',
      step_size: '3600',
      price_per_step: '1',
      currency: 'USDC',
      decimals: 6,
      min_steps: '1',
      max_steps: '5',
    },
  ],
};
const SESSION = {
  id: '00000000000000ab',
  mac: '02:00:00:00:1b:01',
  plan: 'hour',
  metric: 'seconds',
  state: 'ACTIVE',
  allotment: '7200',
  used: '0',
  remaining: '7200',
  started_at: 1767225600000,
  expires_at: 1767232800000,
};

/** The router's answers: the plans, no session yet, and `voucher` for POST /voucher (recording what was sent). */
function router(voucher: { status: number; body: unknown; headers?: Record<string, string> }) {
  const sent: unknown[] = [];
  return {
    sent,
    handler: async (path: string, init: { method?: string; body?: string }) => {
      if (path === '/') return { status: 200, body: PLANS };
      if (path === '/voucher' && init.method === 'POST') {
        sent.push(JSON.parse(init.body ?? '{}'));
        return voucher;
      }
      return { status: 404, body: { error: { code: 'ERR_SESSION_NOT_FOUND', message: 'no session' } } };
    },
  };
}

test("a ticket's QR link redeems its code at once and leaves the address without it", async () => {
  const r = router({ status: 200, body: { session: SESSION, topped_up: false, added: '7200', gate: 'opened' } });
  const page = await loadPage({ handler: r.handler, search: '?voucher=7KQ2-M9AB-CD' } as never);
  assert.equal(
    r.sent.map((b) => (b as { code: string }).code),
    ['7KQ2-M9AB-CD'],
  );
  assert.is(page.byId('voucher-code').value, '7KQ2-M9AB-CD');
  assert.is(page.address(), 'http://192.168.1.1:2122/portal', 'a reload does not send the used code again');
  assert.not.match(page.byId('message').textContent, /voucher|error/i);
});

test("a used code and too many wrong codes: the customer's words", async () => {
  const used = router({
    status: 402,
    body: { error: { code: 'ERR_PAYMENT_REPLAYED', message: 'payment was already applied' } },
  });
  const page = await loadPage({ handler: used.handler, search: '?voucher=7KQ2-M9AB-CD' } as never);
  assert.is(
    page.byId('message').textContent,
    'This voucher was already used: each one works once. If it was used on this device, your access is shown above.',
  );
  const limited = router({
    status: 429,
    body: {
      error: { code: 'ERR_VOUCHER_GUESS_LIMIT', message: 'too many wrong voucher codes: please wait 12 seconds' },
    },
  });
  const again = await loadPage({ handler: limited.handler, languages: ['de-DE'] } as never);
  again.byId('voucher-code').value = 'ABCD-EFGH-JK';
  again.byId('voucher').dispatch('submit');
  await again.settle();
  assert.match(again.byId('message').textContent, /^Gerade zu viele falsche Gutscheincodes/);
});

test('too many wrong codes on the network: the page names the wait and sends the code again then', async () => {
  const limited = router({
    status: 429,
    headers: { 'retry-after': '47' },
    body: {
      error: {
        code: 'ERR_VOUCHER_GUESS_LIMIT',
        message: 'too many wrong voucher codes on this network right now: please wait 47 seconds',
      },
    },
  });
  const page = await loadPage({ handler: limited.handler } as never);
  page.byId('voucher-code').value = 'ABCD-EFGH-JK';
  page.byId('voucher').dispatch('submit');
  await page.settle();
  assert.is(
    page.byId('message').textContent,
    'Too many wrong voucher codes right now. Your code is sent again in 47 s: please keep this page open.',
  );
  assert.is(limited.sent.length, 1);
  page.fire(47_000);
  await page.settle();
  assert.equal(
    limited.sent.map((b) => (b as { code: string }).code),
    ['ABCD-EFGH-JK', 'ABCD-EFGH-JK'],
    'sent again when the wait is over, while the router keeps its place',
  );
});

test.run();
