// tier: daemon
/**
 * The pay page's batch-settlement part (batch-page.js with the built batch.js) on the stand-in DOM, the router's
 * answers staged by a handler: the deposit offer beside the prepaid price in the five languages; a returning customer
 * without a wallet (the captive-portal window) pays by a voucher alone, signed by the key the browser kept; a stale
 * charge is re-synced from the corrective 402 only within what the browser signed; every refusal in the customer's
 * words; the channel box (charged so far, the ceiling, what comes back) and the refund request.
 * The same path against the real daemon and chain: batch-page-chain.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { getAddress, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { computeChannelId, signVoucher } from '@x402/evm/batch-settlement/client';
import { loadPage, type FakePage, type FakeResponse, type FetchHandler } from './fake-dom.ts';

const test = suite('pay page: deposit, pay for what you use, the rest comes back');
const NET = 'eip155:84532';
const ASSET = getAddress(`0x${'cd'.repeat(20)}`);
const RECEIVER = getAddress(`0x${'ab'.repeat(20)}`);
const AUTHORIZER = getAddress(`0x${'ef'.repeat(20)}`);
const PAYER = getAddress(`0x${'12'.repeat(20)}`);
const STEP_PRICE = 10_000n;
const MISMATCH = 'invalid_batch_settlement_evm_cumulative_amount_mismatch';
const FACILITATOR_WORDS =
  'batch-settlement facilitator refused: invalid_batch_settlement_evm_cumulative_exceeds_balance {"reason":"x"}';

const offer = (amount: bigint, extra: Record<string, unknown> = {}) => ({
  scheme: 'batch-settlement',
  network: NET,
  asset: ASSET,
  amount: amount.toString(),
  payTo: RECEIVER,
  maxTimeoutSeconds: 3600,
  extra: { receiverAuthorizer: AUTHORIZER, withdrawDelay: 900, name: 'USDC', version: '2', ...extra },
});

function plans(batch = true, x402 = false) {
  return {
    methods: { x402, voucher: false, batch_settlement: batch },
    plans: [
      {
        id: 'wifi',
        metric: 'seconds',
        step_size: '60',
        price_per_step: String(STEP_PRICE),
        currency: 'USDC',
        decimals: 6,
        min_steps: '1',
        max_steps: '100',
        x402: x402 ? { scheme: 'exact' } : null,
        ...(batch && { batch_settlement: offer(STEP_PRICE) }),
      },
    ],
  };
}

const paid = {
  status: 200,
  body: {
    session: {
      id: 'aa',
      mac: '02:00:00:00:0f:01',
      state: 'ACTIVE',
      metric: 'seconds',
      allotment: '60',
      remaining: '60',
      used: '0',
      payments: [],
    },
    topped_up: false,
    added: '60',
    gate: 'opened',
  },
};

/** A browser that paid from this channel before: its key, salt and config in localStorage, as the page keeps them. */
function storedChannel(o: { charged: bigint; ceiling: bigint; balance: bigint }) {
  const key = generatePrivateKey();
  const salt = `0x${'5a'.repeat(32)}` as Hex;
  const config = {
    payer: PAYER,
    payerAuthorizer: privateKeyToAccount(key).address,
    receiver: RECEIVER,
    receiverAuthorizer: AUTHORIZER,
    token: ASSET,
    withdrawDelay: 900,
    salt,
  };
  const channelId = computeChannelId(config, NET).toLowerCase() as Hex;
  const storage = new Map([
    [
      'sluice-batch-channel',
      JSON.stringify({
        key,
        salt,
        config,
        network: NET,
        channelId,
        charged: String(o.charged),
        ceiling: String(o.ceiling),
        balance: String(o.balance),
        currency: 'USDC',
        decimals: 6,
      }),
    ],
  ]);
  return {
    key,
    channelId,
    storage,
    voucher: async (ceiling: bigint) =>
      (await signVoucher(privateKeyToAccount(key) as never, channelId, ceiling.toString(), NET)).signature,
  };
}

function decode(header: string | undefined): Record<string, any> {
  return JSON.parse(Buffer.from(String(header), 'base64').toString('utf8')) as Record<string, any>;
}

interface Stage {
  signed: Array<Record<string, any>>;
  buy: (payload: Record<string, any>) => FakeResponse;
  channel?: () => FakeResponse;
  refund?: (payload: Record<string, any>) => FakeResponse;
}

function router(stage: Stage, gets = plans()): FetchHandler {
  return (path, init) => {
    if (path === '/') return { status: 200, body: gets };
    if (path === '/session') return { status: 404, body: { error: { code: 'ERR_SESSION_NOT_FOUND' } } };
    if (path.startsWith('/batch/channel'))
      return stage.channel ? stage.channel() : { status: 404, body: { error: { code: 'ERR_BATCH_CHANNEL_UNKNOWN' } } };
    if (path === '/batch/refund') {
      assert.is(init.method, 'POST');
      const payload = (JSON.parse(String(init.body)) as { payload: Record<string, any> }).payload;
      stage.signed.push(payload);
      return stage.refund!(payload);
    }
    const m = /^\/buy\?plan=wifi&steps=(\d+)$/.exec(path);
    if (!m) throw new Error(`unexpected ${path}`);
    const header = init.headers?.['PAYMENT-SIGNATURE'];
    if (!header)
      return {
        status: 402,
        body: { x402Version: 2, resource: { url: 'http://r/buy' }, accepts: [offer(BigInt(m[1]!) * STEP_PRICE)] },
      };
    const payload = decode(header);
    stage.signed.push(payload);
    return stage.buy(payload);
  };
}

function batchBox(page: FakePage) {
  const card = page.byId('plans').children[0]!;
  const box = card.all().find((e) => e.className === 'batch');
  const steps = card.all().find((e) => e.tagName === 'input')!;
  return { card, box, button: box?.children.find((e) => e.tagName === 'button'), steps };
}

async function click(page: FakePage, steps = 1): Promise<void> {
  const b = batchBox(page);
  b.steps.value = String(steps);
  b.steps.dispatch('input');
  assert.ok(b.button && !b.button.disabled, 'the deposit button can be pressed');
  b.button!.dispatch('click');
  await page.batch.pending;
  await page.settle();
}

/** Customer words only: no code, no JSON, no facilitator reason. */
function assertCustomerWords(text: string): void {
  assert.not.match(text, /ERR_|invalid_|[{}]|facilitator|0x[0-9a-f]{6}/i, text);
}

test(
  'the deposit is offered beside the prepaid price, in each of the five languages; a batch-only router shows the ' +
    'wallet section',
  async () => {
    const expected: Record<string, RegExp> = {
      en: /Or deposit 0\.01 USDC: you pay only for what you use, the rest comes back to your wallet\./,
      de: /Oder hinterlegen Sie 0,01 USDC: Sie zahlen nur, was Sie nutzen/,
      es: /O deposite 0,01 USDC: paga solo lo que usa y el resto vuelve a su monedero\./,
      fr: /Ou déposez 0,01 USDC : vous ne payez que ce que vous utilisez/,
      pt: /Ou deposite 0,01 USDC: você paga só o que usar, o resto volta para a sua carteira\./,
    };
    for (const [lang, text] of Object.entries(expected)) {
      const page = await loadPage({
        handler: router({ signed: [], buy: () => paid }),
        languages: [lang],
        ethereum: { request: async () => [] },
      });
      const { card, box, button } = batchBox(page);
      assert.ok(box, `${lang}: a deposit line`);
      assert.match(card.text(), text, lang);
      assert.is(button!.textContent, page.batch.WORDS[lang].bPay);
      assert.not.match(
        card.text(),
        new RegExp(page.portal.MESSAGES[lang].notCrypto.replace(/[()]/g, '\\$&')),
        `${lang}: the plan is sold for crypto`,
      );
      assert.is(page.byId('wallet-section').hidden, false);
      // Every word of the deposit in every language.
      assert.equal(Object.keys(page.batch.WORDS[lang]).sort(), Object.keys(page.batch.WORDS.en).sort(), lang);
    }
    const none = await loadPage({
      handler: router({ signed: [], buy: () => paid }, plans(false, true)),
      ethereum: { request: async () => [] },
    });
    assert.is(batchBox(none).box, undefined, 'no batch offer in GET /: no deposit line');
  },
);

test(
  'a returning customer without a wallet (the captive window) pays by a voucher alone, signed by the key the ' +
    'browser kept',
  async () => {
    const ch = storedChannel({ charged: 30_000n, ceiling: 40_000n, balance: 100_000n });
    const stage: Stage = { signed: [], buy: () => paid };
    const page = await loadPage({ handler: router(stage), storage: ch.storage });
    assert.is(batchBox(page).button!.textContent, 'Pay from my deposit');
    await click(page, 2);
    assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
    assert.is(stage.signed.length, 1);
    const p = stage.signed[0]!;
    assert.is(p.payload.type, 'voucher');
    assert.is(p.accepted.scheme, 'batch-settlement');
    assert.is(p.payload.voucher.channelId, ch.channelId);
    assert.is(p.payload.voucher.maxClaimableAmount, '50000', 'charged + the price of 2 steps');
    assert.is(p.payload.voucher.signature, await ch.voucher(50_000n), 'signed by the stored key');
    assert.is(JSON.parse(ch.storage.get('sluice-batch-channel')!).ceiling, '50000');

    // The last session used little (charged + price is below the last ceiling): the voucher goes one unit
    // above the last ceiling this browser signed, never at or below it (that one anyone could replay).
    const low = storedChannel({ charged: 30_000n, ceiling: 100_000n, balance: 200_000n });
    const stage2: Stage = { signed: [], buy: () => paid };
    const page2 = await loadPage({ handler: router(stage2), storage: low.storage });
    await click(page2, 2);
    assert.is(page2.byId('message').className, 'ok', page2.byId('message').textContent);
    assert.equal(
      stage2.signed.map((x) => x.payload.voucher.maxClaimableAmount),
      ['100001'],
    );
  },
);

test(
  '"Pay from my deposit" only when what is left covers the price: after a refund the button asks for a deposit ' +
    'again',
  async () => {
    // The record as the last visit left it (100000 deposited, 30000 charged); the router now says the rest came back.
    const ch = storedChannel({ charged: 30_000n, ceiling: 30_000n, balance: 100_000n });
    let view: Record<string, unknown> = {
      channel_id: ch.channelId,
      network: NET,
      asset: ASSET,
      charged: '30000',
      ceiling: '30000',
      balance: '30000',
      claimed: '30000',
      available: '0',
      session_open: false,
      refund_policy: 'at-end',
      refund: { state: 'done', amount: '70000', transaction: `0x${'11'.repeat(32)}`, done_at: 1 },
    };
    const page = await loadPage({
      handler: router({ signed: [], buy: () => paid, channel: () => ({ status: 200, body: view }) }),
      storage: ch.storage,
    });
    assert.is(batchBox(page).button!.textContent, 'Deposit and go online', 'nothing left: a new deposit');
    // A deposit that covers 7 steps but not 8 (the router's view, followed every 30 s).
    view = { ...view, balance: '100000', available: '70000', refund: { state: 'none' } };
    page.fire(30_000);
    await page.settle();
    const b = batchBox(page);
    for (const [steps, words] of [
      [7, 'Pay from my deposit'],
      [8, 'Deposit and go online'],
    ] as const) {
      b.steps.value = String(steps);
      b.steps.dispatch('input');
      assert.is(b.button!.textContent, words, `${steps} steps`);
    }
  },
);

test(
  'a stale charge: re-synced from the corrective 402 and signed again once; a router claiming more than was ' +
    'signed gets nothing',
  async () => {
    // The last purchase: 4 steps from 0. The router charged all 4 (40000): the next ceiling is 50000, not 40001.
    const ch = storedChannel({ charged: 0n, ceiling: 40_000n, balance: 100_000n });
    const corrective =
      (base: string, signedMax = '40000', signature?: string) =>
      async () => ({
        status: 402,
        body: {
          x402Version: 2,
          error: MISMATCH,
          code: 'ERR_BATCH_CUMULATIVE_MISMATCH',
          message: 'developer words',
          accepts: [
            offer(STEP_PRICE, {
              channelState: { channelId: ch.channelId, balance: '100000', chargedCumulativeAmount: base },
              voucherState: {
                signedMaxClaimable: signedMax,
                signature: signature ?? (await ch.voucher(BigInt(signedMax))),
              },
            }),
          ],
        },
      });
    const right = await corrective('40000')();
    const stage: Stage = { signed: [], buy: (p) => (p.payload.voucher.maxClaimableAmount === '50000' ? paid : right) };
    const page = await loadPage({ handler: router(stage), storage: ch.storage });
    await click(page);
    assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
    assert.equal(
      stage.signed.map((p) => p.payload.voucher.maxClaimableAmount),
      ['40001', '50000'],
    );
    assert.is(JSON.parse(ch.storage.get('sluice-batch-channel')!).ceiling, '50000');

    // A router claiming a charge above what this browser signed: no second signature, and the customer is told why.
    for (const [what, answer] of [
      ['a charge above the last ceiling', await corrective('150000')()],
      ['a last voucher this browser never signed (another ceiling)', await corrective('60000', '90000')()],
      [
        "its last ceiling with a signature that is not this browser's",
        await corrective('40000', '40000', `0x${'77'.repeat(65)}`)(),
      ],
      ['a base whose next ceiling would not rise above the last one', await corrective('20000')()],
    ] as const) {
      const greedy = storedChannel({ charged: 0n, ceiling: 40_000n, balance: 100_000n });
      const extra = answer.body.accepts[0]!.extra as Record<string, any>;
      const fixed = {
        ...answer,
        body: {
          ...answer.body,
          accepts: [
            offer(STEP_PRICE, {
              ...extra,
              channelState: { ...extra.channelState, channelId: greedy.channelId },
              voucherState: {
                ...extra.voucherState,
                ...(what.includes('never') || what.includes('not this')
                  ? {}
                  : { signature: await greedy.voucher(BigInt(extra.voucherState.signedMaxClaimable)) }),
              },
            }),
          ],
        },
      };
      const before = greedy.storage.get('sluice-batch-channel');
      const stage2: Stage = { signed: [], buy: () => fixed };
      const page2 = await loadPage({ handler: router(stage2), storage: greedy.storage });
      await click(page2);
      assert.is(page2.byId('message').className, 'error', what);
      assert.is(page2.byId('message').textContent, page2.batch.WORDS.en.bMismatch, what);
      assertCustomerWords(page2.byId('message').textContent);
      assert.is(stage2.signed.length, 1, `${what}: no second signature`);
      assert.equal(JSON.parse(greedy.storage.get('sluice-batch-channel')!).ceiling, JSON.parse(before!).ceiling, what);
    }
  },
);

test(
  "The router's channel view shows a ceiling this browser never signed, or a charge above its last: " +
    'nothing is signed, the box says why',
  async () => {
    for (const [what, ceiling, charged] of [
      ['a voucher this browser never sent', '90000', '30000'],
      ['a charge above its last ceiling', '40000', '50000'],
    ] as const) {
      const ch = storedChannel({ charged: 0n, ceiling: 40_000n, balance: 100_000n });
      const view = {
        channel_id: ch.channelId,
        network: NET,
        asset: ASSET,
        charged,
        ceiling,
        balance: '100000',
        claimed: '0',
        available: '10000',
        session_open: false,
        refund_policy: 'on-request',
        refund: { state: 'none' },
      };
      const stage: Stage = { signed: [], buy: () => paid, channel: () => ({ status: 200, body: view }) };
      const page = await loadPage({ handler: router(stage), storage: ch.storage });
      assert.match(page.byId('channel').text(), page.batch.WORDS.en.bMismatch, what);
      await click(page);
      assert.is(page.byId('message').textContent, page.batch.WORDS.en.bMismatch, what);
      assert.equal(stage.signed, [], `${what}: nothing signed`);
      assert.is(JSON.parse(ch.storage.get('sluice-batch-channel')!).charged, '0', `${what}: the charge not believed`);
    }
  },
);

test("every refusal in the customer's words, in their language", async () => {
  const cases: Array<[FakeResponse, string]> = [
    [{ status: 409, body: { error: { code: 'ERR_BATCH_CHANNEL_BUSY', message: 'channel 0xabc busy' } } }, 'bBusy'],
    [
      { status: 504, body: { error: { code: 'ERR_BATCH_DEPOSIT_PENDING', message: 'settle unconfirmed' } } },
      'bDepositPending',
    ],
    [
      {
        status: 402,
        body: {
          error: 'invalid_batch_settlement_evm_cumulative_exceeds_balance',
          code: 'ERR_BATCH_VERIFY_REJECTED',
          message: FACILITATOR_WORDS,
          accepts: [offer(STEP_PRICE)],
        },
      },
      'paymentRefused',
    ],
    [
      {
        status: 402,
        body: {
          error: 'ERR_BATCH_VOUCHER_INVALID: high-s',
          code: 'ERR_BATCH_VOUCHER_INVALID',
          message: 'high-s',
          accepts: [offer(STEP_PRICE)],
        },
      },
      'paymentRefused',
    ],
    [
      {
        status: 402,
        body: {
          error: 'ERR_BATCH_CHANNEL_MISMATCH',
          code: 'ERR_BATCH_CHANNEL_MISMATCH',
          message: 'receiver',
          accepts: [offer(STEP_PRICE)],
        },
      },
      'paymentRefused',
    ],
    [
      { status: 500, body: { error: { code: 'ERR_BATCH_STORE', message: 'EIO /var/lib/sluice/batch-channels.json' } } },
      'generic',
    ],
    [{ status: 429, body: { error: { code: 'ERR_HTTP_RATE_LIMITED', message: 'slow down' } } }, 'rateLimited'],
    [{ status: 403, body: { error: { code: 'ERR_HTTP_CLIENT_UNKNOWN', message: 'no client' } } }, 'notOnPortal'],
    [{ status: 502, text: '<html>Bad gateway</html>' }, 'generic'],
  ];
  for (const lang of ['en', 'fr']) {
    for (const [answer, key] of cases) {
      const ch = storedChannel({ charged: 0n, ceiling: 0n, balance: 100_000n });
      const page = await loadPage({
        handler: router({ signed: [], buy: () => answer }),
        storage: ch.storage,
        languages: [lang],
      });
      await click(page);
      const text = page.byId('message').textContent;
      assert.is(page.byId('message').className, 'error');
      assert.is(text, page.portal.MESSAGES[lang][key], `${answer.status} ${JSON.stringify(answer.body)}`);
      assertCustomerWords(text);
    }
  }
  // The router unreachable while paying.
  const ch = storedChannel({ charged: 0n, ceiling: 0n, balance: 100_000n });
  const down = await loadPage({
    handler: router({
      signed: [],
      buy: () => {
        throw new Error('ECONNRESET');
      },
    }),
    storage: ch.storage,
  });
  await click(down);
  assert.is(down.byId('message').textContent, down.portal.MESSAGES.en.unreachable);
});

test(
  'a new channel: the wallet is asked once, cancelling or ' + 'too little money moves nothing and is said in words',
  async () => {
    const wallet = (o: { balance: bigint; cancel?: boolean }) => {
      const calls: string[] = [];
      return {
        calls,
        request: async ({ method }: { method: string }) => {
          calls.push(method);
          if (method === 'eth_requestAccounts') return [PAYER];
          if (method === 'eth_chainId') return '0x14a34';
          if (method === 'eth_call') return `0x${o.balance.toString(16).padStart(64, '0')}`;
          if (method === 'eth_signTypedData_v4')
            throw Object.assign(new Error('User rejected the request.'), { code: 4001 });
          throw new Error(method);
        },
      };
    };
    const poor = wallet({ balance: 5_000n });
    const stage: Stage = { signed: [], buy: () => paid };
    const storage = new Map<string, string>();
    const page = await loadPage({ handler: router(stage), ethereum: poor, storage });
    await click(page);
    assert.is(
      page.byId('message').textContent,
      'Your wallet does not hold enough USDC for this: it has 0.005 USDC, this costs 0.01 USDC. Nothing was charged.',
    );
    assert.not.ok(poor.calls.includes('eth_signTypedData_v4'), 'not asked to sign');
    assert.is(stage.signed.length, 0);

    const cancels = wallet({ balance: 1_000_000n });
    const page2 = await loadPage({ handler: router(stage), ethereum: cancels, storage: new Map(), languages: ['es'] });
    await click(page2);
    assert.is(page2.byId('message').textContent, page2.portal.MESSAGES.es.walletCancelled);
    assert.is(cancels.calls.filter((m) => m === 'eth_signTypedData_v4').length, 1, 'one wallet prompt: the deposit');
    assert.is(stage.signed.length, 0);
  },
);

test(
  'a deposit whose answer did not come is sent again ' + 'as it was: one wallet signature, the same payload',
  async () => {
    const calls: string[] = [];
    const ethereum = {
      request: async ({ method, params }: { method: string; params?: unknown[] }) => {
        calls.push(method);
        if (method === 'eth_requestAccounts') return [PAYER];
        if (method === 'eth_chainId') return '0x14a34';
        if (method === 'eth_call') return `0x${1_000_000n.toString(16).padStart(64, '0')}`;
        if (method === 'eth_signTypedData_v4')
          return privateKeyToAccount(generatePrivateKey()).signTypedData(
            (({ types: { EIP712Domain: _d, ...types }, ...rest }) => ({ ...rest, types }))(
              JSON.parse(String(params![1])),
            ) as never,
          );
        throw new Error(method);
      },
    };
    const headers: string[] = [];
    const stage: Stage = {
      signed: [],
      buy: (p) => {
        headers.push(JSON.stringify(p));
        return headers.length === 1
          ? { status: 504, body: { error: { code: 'ERR_BATCH_DEPOSIT_PENDING', message: 'settle unconfirmed' } } }
          : paid;
      },
    };
    const storage = new Map<string, string>();
    const page = await loadPage({ handler: router(stage), ethereum, storage, now: Date.now() });
    await click(page);
    assert.is(page.byId('message').textContent, page.portal.MESSAGES.en.bDepositPending);
    const rec = JSON.parse(storage.get('sluice-batch-channel')!) as Record<string, any>;
    assert.ok(rec.pending, 'the signed deposit is kept');
    assert.is(rec.ceiling, '0', 'nothing counted as paid yet');
    await click(page);
    assert.is(page.byId('message').className, 'ok', page.byId('message').textContent);
    assert.is(headers.length, 2);
    assert.is(headers[1], headers[0], 'the same payload again');
    assert.is(stage.signed[0]!.payload.type, 'deposit');
    assert.is(calls.filter((m) => m === 'eth_signTypedData_v4').length, 1, 'the wallet signed once');
    const after = JSON.parse(storage.get('sluice-batch-channel')!) as Record<string, any>;
    assert.is(after.pending, undefined);
    assert.is(after.ceiling, String(STEP_PRICE));
    assert.is(after.balance, String(STEP_PRICE));
  },
);

test(
  'the channel box: charged so far, the ceiling, what comes back; the refund request is signed by the kept key; ' +
    'done, on its way, refused',
  async () => {
    const ch = storedChannel({ charged: 30_000n, ceiling: 30_000n, balance: 100_000n });
    let view: Record<string, unknown> = {
      channel_id: ch.channelId,
      network: NET,
      asset: ASSET,
      charged: '30000',
      ceiling: '40000',
      balance: '100000',
      claimed: '0',
      available: '60000',
      session_open: true,
      refund_policy: 'on-request',
      refund: { state: 'none' },
    };
    const stage: Stage = {
      signed: [],
      buy: () => paid,
      channel: () => ({ status: 200, body: view }),
      refund: () => ({
        status: 200,
        body: {
          ...view,
          available: '0',
          refund: { state: 'done', amount: '70000', transaction: `0x${'11'.repeat(32)}`, done_at: 1 },
        },
      }),
    };
    const page = await loadPage({ handler: router(stage), storage: ch.storage });
    const box = page.byId('channel');
    assert.is(box.hidden, false);
    assert.match(
      box.text(),
      /Your deposit: 0\.1 USDC\. Charged so far: 0\.03 USDC \(at most 0\.04 USDC while your access runs\)\./,
    );
    assert.match(box.text(), /Coming back to you: 0\.06 USDC\./);
    assert.is(
      box.all().find((e) => e.tagName === 'button'),
      undefined,
      'no refund while the session runs',
    );

    view = { ...view, ceiling: '30000', available: '70000', session_open: false };
    page.fire(30_000);
    await page.settle();
    // The access ended: no "while your access runs" ceiling any more. (The stand-in DOM keeps earlier renders'
    // children: the last ones are what the box shows.)
    const shown = (n: number): string[] => box.children.slice(-n).map((c) => c.textContent);
    assert.equal(shown(3), [
      'Your deposit: 0.1 USDC. Charged for your access: 0.03 USDC.',
      'Coming back to you: 0.07 USDC.',
      'Give me the rest back now',
    ]);
    const button = box.all().find((e) => e.tagName === 'button')!;
    assert.is(button.textContent, 'Give me the rest back now');
    button.dispatch('click');
    await page.batch.pending;
    await page.settle();
    const p = stage.signed[0]!;
    assert.is(p.payload.type, 'refund');
    assert.is(p.payload.voucher.maxClaimableAmount, '30000', 'a voucher at what was charged');
    assert.is(p.payload.voucher.signature, await ch.voucher(30_000n));
    assert.is(page.byId('message').textContent, '0.07 USDC came back to your wallet.');
    assert.equal(shown(2), ['You paid 0.03 USDC for what you used.', '0.07 USDC came back to your wallet.']);
    // After the refund the channel's balance is what was charged (as the router reports it): said as what was paid,
    // not as "Your deposit", and no ceiling of an access that has ended.
    const ended = view;
    view = {
      ...view,
      balance: '30000',
      available: '0',
      refund: { state: 'done', amount: '70000', transaction: `0x${'11'.repeat(32)}`, done_at: 1 },
    };
    page.fire(30_000);
    await page.settle();
    assert.equal(shown(2), ['You paid 0.03 USDC for what you used.', '0.07 USDC came back to your wallet.']);
    view = ended;

    const refusals: Array<[FakeResponse, string]> = [
      [{ status: 202, body: { ...view, refund: { state: 'requested', requested_at: 1 } } }, 'bRefundRequested'],
      [
        { status: 403, body: { error: { code: 'ERR_BATCH_REFUND_FORBIDDEN', message: 'not the payerAuthorizer' } } },
        'bRefundForbidden',
      ],
      [
        { status: 409, body: { error: { code: 'ERR_BATCH_REFUND_NO_BALANCE', message: 'available 0' } } },
        'bRefundNothing',
      ],
      [{ status: 409, body: { error: { code: 'ERR_BATCH_CHANNEL_BUSY', message: 'open' } } }, 'bRefundBusy'],
    ];
    for (const [answer, key] of refusals) {
      const again = storedChannel({ charged: 30_000n, ceiling: 30_000n, balance: 100_000n });
      const s: Stage = {
        signed: [],
        buy: () => paid,
        channel: () => ({ status: 200, body: { ...view, channel_id: again.channelId } }),
        refund: () => answer,
      };
      const pg = await loadPage({ handler: router(s), storage: again.storage, languages: ['pt-BR'] });
      pg.byId('channel')
        .all()
        .find((e) => e.tagName === 'button')!
        .dispatch('click');
      await pg.batch.pending;
      await pg.settle();
      assert.is(pg.byId('message').textContent, pg.portal.MESSAGES.pt[key], key);
      assertCustomerWords(pg.byId('message').textContent);
    }
  },
);

test.run();
