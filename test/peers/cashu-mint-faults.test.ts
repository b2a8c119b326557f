// tier: daemon
/**
 * The lab mint's faults (test/peers/cashu-mint.ts) as cashu-ts's Wallet sees them, and what each leaves at the mint:
 * a delayed or held swap, 429, 5xx, a dropped request (nothing applied), "commit then drop" (applied, answer lost)
 * recovered by NUT-09 restore with NUT-19 off and replayed transparently by cashu-ts with NUT-19 on, and a closed
 * port. Daemon tier: real timers (the delay fault, cashu-ts's retry back-off); nothing asserts on time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HttpResponseError, NetworkError, RateLimitError, Wallet, getDecodedToken, type Proof } from '@cashu/cashu-ts';
import { CODES, startCashuMint, type CashuMint } from './cashu-mint.ts';

let mint: CashuMint | undefined;
test.after.each(async () => {
  await mint?.stop();
  mint = undefined;
});

async function setUp(
  opts: { cachedResponses?: boolean } = {},
): Promise<{ mint: CashuMint; wallet: Wallet; token: string; customer: Proof[] }> {
  mint = await startCashuMint(opts);
  const wallet = new Wallet(mint.url, { unit: mint.unit });
  await wallet.loadMint();
  const token = await mint.fundToken(21);
  return {
    mint,
    wallet,
    token,
    customer: getDecodedToken(
      token,
      mint.keysets().map((k) => k.id),
    ).proofs,
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.unreachable('expected a rejection');
}

async function states(wallet: Wallet, proofs: Proof[]): Promise<string[]> {
  return [...new Set((await wallet.checkProofsStates(proofs)).map((s) => s.state))];
}

const sum = (proofs: Proof[]): number => proofs.reduce((s, p) => s + p.amount.toNumber(), 0);

test('delay: the swap is answered late, and answered', async () => {
  const { mint, wallet, token } = await setUp();
  const f = mint.fault('POST /v1/swap', 'delay', { ms: 50, times: 1 });
  assert.is(sum(await wallet.receive(token)), 21);
  assert.is(f.hits, 1);
});

test('hold before: nothing applied while held (checkstate UNSPENT); released, the swap completes', async () => {
  const { mint, wallet, token, customer } = await setUp();
  const f = mint.fault('POST /v1/swap', 'hold');
  const receiving = wallet.receive(token);
  await f.arrived;
  assert.equal(await states(wallet, customer), ['UNSPENT']);
  await f.release();
  assert.is(sum(await receiving), 21);
  assert.equal(await states(wallet, customer), ['SPENT']);
});

test("hold after: applied at once (SPENT) while the answer is held — a slow mint's crash window", async () => {
  const { mint, wallet, token, customer } = await setUp();
  const f = mint.fault('POST /v1/swap', 'hold', { when: 'after' });
  const receiving = wallet.receive(token);
  await f.arrived;
  assert.equal(await states(wallet, customer), ['SPENT']);
  await f.release();
  assert.is(sum(await receiving), 21);
});

test(
  '429 and 5xx (NUT-19 off): the client gets RateLimitError ' + '/ HttpResponseError 503 and the token stays spendable',
  async () => {
    const { mint, wallet, token, customer } = await setUp({ cachedResponses: false });
    mint.fault('POST /v1/swap', '429', { times: 1, retryAfter: 2 });
    const limited = await rejection(wallet.receive(token));
    assert.instance(limited, RateLimitError);
    assert.is((limited as RateLimitError).retryAfterMs, 2000);
    mint.fault('POST /v1/swap', '5xx', { times: 1 });
    const failed = await rejection(wallet.receive(token));
    assert.instance(failed, HttpResponseError);
    assert.is((failed as HttpResponseError).status, 503);
    assert.equal(await states(wallet, customer), ['UNSPENT']);
    assert.is(mint.calls('POST /v1/swap'), 2);
    assert.is(sum(await wallet.receive(token)), 21);
  },
);

test('drop: the socket closes before anything is applied — a NetworkError, the token UNSPENT', async () => {
  const { mint, wallet, token, customer } = await setUp({ cachedResponses: false });
  mint.fault('POST /v1/swap', 'drop', { times: 1 });
  assert.instance(await rejection(wallet.receive(token)), NetworkError);
  assert.equal(await states(wallet, customer), ['UNSPENT']);
});

test(
  'commit then drop, NUT-19 off: the client sees a NetworkError, the inputs are SPENT, and NUT-09 restore of the ' +
    'stored outputs recovers every proof',
  async () => {
    const { mint, wallet, token, customer } = await setUp({ cachedResponses: false });
    const f = mint.fault('POST /v1/swap', 'commit-then-drop', { times: 1 });
    const preview = await wallet.prepareSwapToReceive(token);
    assert.instance(await rejection(wallet.completeSwap(preview)), NetworkError);
    assert.is(f.hits, 1);
    assert.equal(await states(wallet, customer), ['SPENT']);
    assert.is(
      ((await rejection(wallet.receive(token))) as { code?: number }).code,
      CODES.spent,
      'swapping again is no way back',
    );
    const outputs = preview.keepOutputs!;
    const { signatures } = await wallet.mint.restore({ outputs: outputs.map((o) => o.blindedMessage) });
    const recovered = signatures.map((sig, i) => outputs[i]!.toProof(sig, wallet.getKeyset()));
    assert.is(sum(recovered), 21);
    assert.equal(await states(wallet, recovered), ['UNSPENT']);
    assert.is(sum(await wallet.receive(recovered)), 21, 'the recovered proofs are real money');
  },
);

test('commit then drop, NUT-19 on: cashu-ts replays the identical swap and gets the cached answer', async () => {
  const { mint, wallet, token } = await setUp();
  const f = mint.fault('POST /v1/swap', 'commit-then-drop', { times: 1 });
  assert.is(sum(await wallet.receive(token)), 21);
  assert.is(f.hits, 1);
  assert.is(mint.calls('POST /v1/swap'), 2);
});

test(
  'refuse: the port closed, a NetworkError (connection refused) on every route, nothing applied; cleared, it ' +
    'serves again',
  async () => {
    const { mint, wallet, token, customer } = await setUp({ cachedResponses: false });
    const f = mint.fault('*', 'refuse');
    // The first request may go out on a kept-alive socket the close cut ("other side closed"): a NetworkError too.
    assert.instance(await rejection(wallet.receive(token)), NetworkError);
    const fresh = await rejection(fetch(`${mint.url}/v1/info`));
    assert.is((fresh as { cause?: { code?: string } }).cause?.code, 'ECONNREFUSED');
    assert.instance(await rejection(wallet.checkProofsStates(customer)), NetworkError);
    await f.clear();
    assert.equal(await states(wallet, customer), ['UNSPENT']);
    assert.is(sum(await wallet.receive(token)), 21);
  },
);

test(
  'NUT-19 on: cashu-ts retries a cached route after a 5xx (up to 9 times, with back-off), so one 5xx goes ' +
    'unnoticed',
  async () => {
    const { mint, wallet, token } = await setUp();
    const f = mint.fault('POST /v1/swap', '5xx', { times: 1 });
    assert.is(sum(await wallet.receive(token)), 21);
    assert.equal([f.hits, mint.calls('POST /v1/swap')], [1, 2]);
  },
);

test('a route-scoped fault leaves the other routes alone; it matches until cleared; clearFaults ends it', async () => {
  const { mint, wallet, token, customer } = await setUp({ cachedResponses: false });
  const f = mint.fault('POST /v1/swap', '5xx', { status: 502 });
  assert.equal(await states(wallet, customer), ['UNSPENT'], 'checkstate is not faulted');
  assert.is(((await rejection(wallet.receive(token))) as HttpResponseError).status, 502);
  assert.is(((await rejection(wallet.receive(token))) as HttpResponseError).status, 502);
  assert.is(f.hits, 2);
  await mint.clearFaults();
  assert.is(sum(await wallet.receive(token)), 21);
});

test.run();
