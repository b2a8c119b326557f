// tier: fast
/**
 * The NUT-04 client (src/cashu/mint-quote-client.ts, the pay page's "Pay with Lightning" groundwork) against the lab
 * mint (in-process on loopback, its fake Lightning node paid on command): a quote is an invoice, UNPAID until paid;
 * minting before is refused; once PAID the router's outputs are signed once and unblind to proofs the mint holds
 * UNSPENT; the quote is then ISSUED and a second mint is refused. A mint whose answer was lost after it signed is
 * recovered the way the crash path will: the quote reads ISSUED and a NUT-09 restore of the same outputs gives the same
 * signatures.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MintQuoteClient } from '../../src/cashu/mint-quote-client.ts';
import { MintClient } from '../../src/cashu/mint-client.ts';
import { makeOutputs, splitAmount, unblind, yOf, type SwapOutput } from '../../src/cashu/token.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { JsonPeer } from '../peers/json-peer.ts';
import { loadCashuLib } from '../../src/cashu/loader.ts';

// cashu-ts and secp256k1 loaded as the daemon loads them before any of sluice's Cashu code runs: without it, that code
// would reach them through the loader's synchronous fallback, a second copy beside this file's, which compiles anew
// and builds its own base-point tables (~0.1-0.2 s of CPU a file).
await loadCashuLib();

let mint: CashuMint;
const options = () => ({ timeoutMs: 5_000, swapTimeoutMs: 5_000, signal: new AbortController().signal });

test.before(async () => {
  mint = await CashuMint.start();
  mint.setAutoPay(false);
});
test.after(async () => {
  await mint.stop();
});

async function outputsFor(
  client: MintClient,
  amount: number,
): Promise<{ outputs: SwapOutput[]; keys: Record<string, string> }> {
  const id = mint.keysets().find((k) => k.active && k.unit === 'sat')!.id;
  const keys = await client.keys(id);
  assert.is(keys.kind, 'ok');
  if (keys.kind !== 'ok') throw new Error('no keys');
  const sizes = Object.keys(keys.value).map((a) => BigInt(a));
  return { outputs: makeOutputs(splitAmount(BigInt(amount), sizes), id), keys: keys.value };
}

test(
  'quote → UNPAID, mint refused → paid → mint once → proofs ' + 'UNSPENT at the mint → ISSUED, a second mint refused',
  async () => {
    const client = new MintQuoteClient(mint.url, options());
    const q = await client.mintQuote(13, 'sat');
    if (q.kind !== 'ok') throw new Error(JSON.stringify(q));
    assert.is(q.value.state, 'UNPAID');
    assert.is(q.value.amount, 13);
    assert.match(q.value.request, /^lnbc/);
    assert.ok(q.value.expiry !== null && q.value.expiry > Date.now() / 1000);
    const { outputs, keys } = await outputsFor(client, 13);
    const early = await client.mint(q.value.quote, outputs, 5_000);
    assert.is(early.kind, 'refused', 'not paid yet');
    mint.payMintQuote(q.value.quote);
    assert.is(((await client.mintQuoteState(q.value.quote)) as { value: { state: string } }).value.state, 'PAID');
    const signed = await client.mint(q.value.quote, outputs, 5_000);
    if (signed.kind !== 'ok') throw new Error(JSON.stringify(signed));
    const proofs = outputs.map((o, i) => unblind(o, signed.value[i]!.C_, keys));
    assert.is(
      proofs.reduce((s, p) => s + p.amount, 0),
      13,
    );
    const states = await client.checkstate(proofs.map((p) => yOf(p.secret)));
    if (states.kind !== 'ok') throw new Error(JSON.stringify(states));
    assert.ok([...states.value.values()].every((s) => s === 'UNSPENT'));
    assert.is(((await client.mintQuoteState(q.value.quote)) as { value: { state: string } }).value.state, 'ISSUED');
    const again = await client.mint(q.value.quote, (await outputsFor(client, 13)).outputs, 5_000);
    assert.is(again.kind, 'refused', 'one quote, one issue');
  },
);

test(
  'the mint signed and the answer was lost: ISSUED, and a ' + 'NUT-09 restore of the same outputs gives the signatures',
  async () => {
    const client = new MintQuoteClient(mint.url, options());
    const q = await client.mintQuote(5, 'sat');
    if (q.kind !== 'ok') throw new Error(JSON.stringify(q));
    mint.payMintQuote(q.value.quote);
    const { outputs, keys } = await outputsFor(client, 5);
    const lost = mint.fault('POST /v1/mint/bolt11', 'commit-then-drop', { times: 1 });
    const answer = await client.mint(q.value.quote, outputs, 5_000);
    assert.is(answer.kind, 'unknown', 'the router cannot tell: its outputs must be on flash already');
    await lost.clear();
    assert.is(((await client.mintQuoteState(q.value.quote)) as { value: { state: string } }).value.state, 'ISSUED');
    const restored = await client.restore(outputs);
    if (restored.kind !== 'ok') throw new Error(JSON.stringify(restored));
    const proofs = outputs.map((o) => unblind(o, restored.value.get(o.B_.toLowerCase())!.C_, keys));
    assert.is(
      proofs.reduce((s, p) => s + p.amount, 0),
      5,
    );
  },
);

test('a quote the mint does not know, and an answer that is not NUT-04: refused / unknown, never ok', async () => {
  const client = new MintQuoteClient(mint.url, options());
  assert.is((await client.mintQuoteState('no-such-quote')).kind, 'refused');
  const liar = await JsonPeer.listen(() => ({
    status: 200,
    body: { quote: 'q', request: 'not an invoice', state: 'PAID' },
  }));
  try {
    const fake = new MintQuoteClient(liar.url, options());
    assert.is((await fake.mintQuoteState('q')).kind, 'unknown');
  } finally {
    await liar.close();
  }
});

test.run();
