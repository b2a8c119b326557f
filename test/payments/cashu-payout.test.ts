// tier: fast
// Cashu custody's operator side (src/payments/cashu/custody.ts, payout.ts, retire.ts) against the lab mint and the lab
// LNURL server (test/peers/, in-process on loopback): a payout melts the held balance to the Lightning address once,
// fees accounted to the sat; a dropped melt answer is resolved from the quote's state (no second melt); a failed melt
// gives the proofs back; a pending one stays pending across a reopen, then resolves; proofs on a retired keyset are
// swapped onto the active one before its final_expiry (also when the swap's answer is lost); balance replies carry
// no secret.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Proof } from '@cashu/cashu-ts';
import { CashuStore } from '../../src/payments/cashu/store.ts';
import { CashuCustody } from '../../src/payments/cashu/custody.ts';
import { bech32Payload, bolt11AmountMsat, payUrlOf } from '../../src/cashu/lnurl.ts';
import type { StoredProof } from '../../src/cashu/token.ts';
import { configFromUci } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { startLnurlServer, type LnurlServer } from '../peers/lnurl-server.ts';
import { loadCashuLib } from '../../src/cashu/loader.ts';

// cashu-ts and secp256k1 loaded as the daemon loads them before any of sluice's Cashu code runs: without it, that code
// would reach them through the loader's synchronous fallback, a second copy beside this file's, which compiles anew
// and builds its own base-point tables (~0.1-0.2 s of CPU a file).
await loadCashuLib();

const stored = (proofs: Proof[]): StoredProof[] =>
  proofs.map((p) => ({ id: p.id, amount: Number(p.amount.toBigInt()), secret: p.secret, C: p.C }));

async function rig(mint: CashuMint, o: { dir?: string; ln?: LnurlServer; payoutMin?: number } = {}) {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'sluice-payout-'));
  const ln = o.ln ?? (await startLnurlServer({ invoice: (sat) => mint.invoice(sat) }));
  const config = configFromUci(
    parseUci(`
config sluice 'main'
\toption state_dir '${dir}'
config pricing 'time'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '500'
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption price_per_step '2'
\toption payout_address '${ln.lnurl}'
\toption payout_min '${o.payoutMin ?? 100000}'
`),
    { hostname: 'r' },
  );
  const store = await CashuStore.open(dir);
  const custody = CashuCustody.open({ store, stateDir: dir, tollgate: config.tollgate! });
  // The custody holds ecash whatever minted it: proofs signed from the keyset's keys, as the mint checks any proof.
  const fund = async (sat: number, keyset?: string) =>
    store.addProofs(mint.url, stored(mint.issuedProofs(sat, keyset ? { keyset } : {})), 'test');
  const close = async () => {
    await custody.close();
    await store.close();
  };
  return { dir, ln, store, custody, fund, close };
}

const MELT = 'POST /v1/melt/bolt11';

test('lnurl: a Lightning address and a bech32 LNURL name their pay URL; bolt11 amounts read from the prefix', () => {
  assert.is(payUrlOf('cafe@pay.example.com'), 'https://pay.example.com/.well-known/lnurlp/cafe');
  // LUD-01's own example.
  const lud01 =
    'lnurl1dp68gurn8ghj7um9wfmxjcm99e3k7mf0v9cxj0m385ekvcenxc6r2c35xvukxefcv5mkvv34x5' +
    'ekzd3ev56nyd3hxqurzepexejxxepnxscrvwfnv9nxzcn9xq6xyefhvgcxxcmyxymnserxfq5fns';
  assert.is(
    new TextDecoder().decode(bech32Payload(lud01, 'lnurl')),
    'https://service.com/api?q=3fc3645b439ce8e7f2553a69e5267081d96dcd340693afabe04be7b0ccd178df',
  );
  assert.is(bolt11AmountMsat('lnbc2500u1pvjluezsp5zyg3z'), 250_000_000n);
  assert.is(bolt11AmountMsat('lnbcrt9940000p1qqq'), 994_000n);
  assert.is(bolt11AmountMsat('lnbc1pvjluez'), null);
});

test(
  'a payout melts the balance once; amount = held − input ' + 'fee − fee_reserve; the unused reserve comes back',
  async () => {
    const mint = await CashuMint.start({ inputFeePpk: 100 });
    const r = await rig(mint);
    try {
      await r.fund(1000);
      const proofs = r.store.proofsOf(mint.url).length;
      const inputFee = Math.ceil((proofs * 100) / 1000);
      mint.meltOutcome('paid', { fee: 2 });
      const out = await r.custody.payout();
      // The lab's fee_reserve is max(2, ceil(amount/100)): 1000 − 1 = 999 asks 10, so the invoice is re-asked for 989.
      assert.equal(
        { ...out, quote: null },
        {
          mint: mint.url,
          state: 'paid',
          quote: null,
          amount: 1000 - inputFee - 10,
          input_fee: inputFee,
          fee_reserve: 10,
          lightning_fee: 2,
          change: 10 - 2,
          reason: null,
        },
      );
      assert.is(r.store.total(), 8n, 'the change is held');
      assert.is(BigInt(out.amount as number) + BigInt(inputFee) + 2n + r.store.total(), 1000n, 'every sat accounted');
      assert.equal(
        r.ln.invoices.map((i) => i.msat),
        [999_000, 989_000],
      );
      assert.is(mint.calls(MELT), 1);
      assert.ok(mint.ledger.paidInvoices.has(r.ln.invoices[1]!.pr), 'the invoice the melt paid is the second one');
      assert.equal(r.store.takes(), [], 'the take ended');
      const balance = r.custody.balance();
      assert.equal((balance.payouts as Array<Record<string, unknown>>)[0]!.state, 'paid');
      // The change is good ecash of the active keyset: the mint's checkstate reads it UNSPENT.
      assert.ok(r.store.proofsOf(mint.url).every((p) => p.id === mint.keysetId));
    } finally {
      await r.close();
      await r.ln.stop();
      await mint.stop();
      rmSync(r.dir, { recursive: true, force: true });
    }
  },
);

test("the melt's answer dropped after the mint paid: the quote's state is read, never a second melt", async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint);
  try {
    await r.fund(500);
    mint.fault(MELT, 'commit-then-drop', { times: 1 });
    const out = await r.custody.payout(mint.url);
    assert.is(out.state, 'paid');
    assert.is(mint.calls(MELT), 1, 'one melt');
    assert.is(mint.calls('GET /v1/melt/quote/bolt11/:id'), 1, 'its state read');
    assert.is(mint.ledger.paidInvoices.size, 1);
    // Asked again: a new payout of what is held now (the change), not the old one again.
    assert.is(r.store.total(), BigInt(out.change as number));
  } finally {
    await r.close();
    await r.ln.stop();
    await mint.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test('a failed melt gives the proofs back (their state read first); the payout says failed', async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint);
  try {
    await r.fund(300);
    const before = r.store
      .proofsOf(mint.url)
      .map((p) => p.secret)
      .sort();
    mint.meltOutcome('failed');
    const out = await r.custody.payout();
    assert.is(out.state, 'failed');
    assert.is(r.store.total(), 300n);
    assert.equal(
      r.store
        .proofsOf(mint.url)
        .map((p) => p.secret)
        .sort(),
      before,
      'the same proofs, held again',
    );
    assert.is(mint.calls(MELT), 1);
    assert.is(mint.calls('POST /v1/checkstate'), 1, "the proofs' state read before they count again");
    assert.equal(r.store.takes(), []);
  } finally {
    await r.close();
    await r.ln.stop();
    await mint.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test('a pending payout stays pending (across a reopen, asked again without a second melt), then resolves', async () => {
  const mint = await CashuMint.start();
  let r = await rig(mint);
  const { dir, ln } = r;
  try {
    await r.fund(400);
    mint.meltOutcome('pending');
    const out = await r.custody.payout();
    assert.is(out.state, 'pending');
    const mints = r.custody.balance().mints as Array<Record<string, unknown>>;
    assert.equal(
      { ...mints[0], mint: null, reachable: null, checked_at: null, last_error: null },
      {
        mint: null,
        reachable: null,
        checked_at: null,
        last_error: null,
        accepted: true,
        balance: 0n,
        proofs: 0,
        pending_payouts: 1,
        pending_sat: 400n,
        keyset_swaps: 0,
        taken_sat: 400n,
      },
    );
    assert.is((await r.custody.payout()).state, 'pending', 'asked again: the same quote read');
    assert.is(mint.calls(MELT), 1);
    await r.close();
    r = await rig(mint, { dir, ln });
    assert.is(await r.custody.reconcile(), 1, 'still open after the reopen');
    assert.is(r.store.total(), 0n);
    mint.settleMelt(out.quote as string, 'paid', { fee: 1 });
    assert.is(await r.custody.runPass(), 0);
    assert.is(mint.calls(MELT), 1, 'still one melt');
    const paid = (r.custody.balance().payouts as Array<Record<string, unknown>>)[0]!;
    assert.is(paid.state, 'paid');
    assert.is(paid.lightning_fee, 1);
    assert.is(r.store.total(), BigInt(paid.change as number));
    assert.is(Number(paid.amount) + Number(paid.input_fee) + 1 + Number(paid.change), 400);
  } finally {
    await r.close();
    await ln.stop();
    await mint.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ecash taken on flash and not yet recorded as a payout or a swap is listed as taken, never as gone', async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint);
  try {
    await r.fund(70);
    await r.store.take(mint.url, r.store.proofsOf(mint.url), 'a move whose record is not written yet');
    const m = (r.custody.balance().mints as Array<Record<string, unknown>>)[0]!;
    assert.equal([m.balance, m.keyset_swaps, m.pending_payouts, m.taken_sat], [0n, 0, 0, 70n]);
  } finally {
    await r.close();
    await r.ln.stop();
    await mint.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test(
  'a pending payout whose Lightning payment then fails: ' + 'the proofs come back after their state is read',
  async () => {
    const mint = await CashuMint.start();
    const r = await rig(mint);
    try {
      await r.fund(200);
      mint.meltOutcome('pending');
      const out = await r.custody.payout();
      assert.is(out.state, 'pending');
      assert.is(r.store.total(), 0n);
      mint.settleMelt(out.quote as string, 'failed');
      assert.is(await r.custody.runPass(), 0);
      assert.is(r.store.total(), 200n, 'held again');
      assert.is((r.custody.balance().payouts as Array<Record<string, unknown>>)[0]!.state, 'failed');
      assert.is(mint.calls(MELT), 1, 'not melted again');
    } finally {
      await r.close();
      await r.ln.stop();
      await mint.stop();
      rmSync(r.dir, { recursive: true, force: true });
    }
  },
);

test(
  "a crash between the take and the melt's record: the " + 'start gives the proofs back, nothing was melted',
  async () => {
    const mint = await CashuMint.start();
    let r = await rig(mint);
    const { dir, ln } = r;
    try {
      await r.fund(150);
      await r.store.take(mint.url, r.store.proofsOf(mint.url), 'payout lost-before-its-record');
      assert.is(r.store.total(), 0n);
      await r.close();
      r = await rig(mint, { dir, ln });
      assert.is(await r.custody.reconcile(), 0);
      assert.is(r.store.total(), 150n);
      assert.equal(r.store.takes(), []);
      assert.is(mint.calls('POST /v1/checkstate'), 1, "the proofs' state read first");
      assert.is(mint.calls(MELT), 0);
    } finally {
      await r.close();
      await ln.stop();
      await mint.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('a payout of too little, or an invoice for another amount, says so and melts nothing', async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint);
  try {
    await r.fund(2);
    let code = '';
    try {
      await r.custody.payout();
    } catch (err) {
      code = (err as { code: string }).code;
    }
    assert.is(code, 'ERR_CASHU_PAYOUT_TOO_SMALL');
    assert.is(r.store.total(), 2n);
    assert.is(mint.calls(MELT), 0);
    const quotes = mint.calls('POST /v1/melt/quote/bolt11');
    r.ln.misbehave('wrong-amount');
    await r.fund(500);
    try {
      await r.custody.payout();
    } catch (err) {
      code = (err as { code: string }).code;
    }
    assert.is(code, 'ERR_CASHU_PAYOUT_LNURL', 'an invoice for another amount is refused');
    assert.is(mint.calls('POST /v1/melt/quote/bolt11'), quotes, 'no quote for it');
  } finally {
    await r.close();
    await r.ln.stop();
    await mint.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test('automatic: the pass pays a mint out once its balance reaches payout_min', async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint, { payoutMin: 600 });
  try {
    await r.fund(500);
    await r.custody.runPass();
    assert.is(mint.calls(MELT), 0, 'under payout_min');
    await r.fund(100);
    await r.custody.runPass();
    assert.is(mint.calls(MELT), 1);
    assert.ok(r.store.total() < 600n);
  } finally {
    await r.close();
    await r.ln.stop();
    await mint.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test(
  'keyset retired: held proofs are swapped onto the active keyset before final_expiry, also when the answer is ' +
    'lost',
  async () => {
    let now = Date.now();
    const finalExpiry = Math.floor(now / 1000) + 3600;
    const mint = await CashuMint.start({ inputFeePpk: 100, finalExpiry, now: () => now });
    const r = await rig(mint);
    try {
      const old = mint.keysetId;
      await r.fund(100);
      await r.fund(28);
      const onOld = r.store.proofsOf(mint.url);
      assert.ok(onOld.every((p) => p.id === old));
      mint.rotate();
      assert.is.not(mint.keysetId, old);
      // The first swap's answer is lost after the mint applied it: the resolver replays the identical swap (NUT-19).
      mint.fault('POST /v1/swap', 'commit-then-drop', { times: 1 });
      await r.custody.runPass();
      const fee = Math.ceil((onOld.length * 100) / 1000);
      assert.is(r.store.total(), BigInt(128 - fee), "moved, less the swap's input fee");
      assert.ok(
        r.store.proofsOf(mint.url).every((p) => p.id === mint.keysetId),
        'all on the active keyset',
      );
      assert.equal(r.store.takes(), []);
      assert.is(mint.calls('POST /v1/swap'), 2, 'the swap, then its replay');
      // After final_expiry the old keyset's proofs are refused (12003); the router's are no longer on it.
      now = (finalExpiry + 1) * 1000;
      mint.meltOutcome('paid');
      assert.is((await r.custody.payout()).state, 'paid');
    } finally {
      await r.close();
      await r.ln.stop();
      await mint.stop();
      rmSync(r.dir, { recursive: true, force: true });
    }
  },
);

test(
  'cashu_balance says whether each mint answered when last asked: a mint gone down shows unreachable, with when ' +
    'and why',
  async () => {
    const mint = await CashuMint.start();
    const r = await rig(mint);
    try {
      const first = (r.custody.balance().mints as Array<Record<string, unknown>>)[0]!;
      assert.equal([first.reachable, first.checked_at, first.last_error], [null, null, null], 'not asked yet');
      await r.fund(300);
      await r.custody.runPass();
      const up = (r.custody.balance().mints as Array<Record<string, unknown>>)[0]!;
      assert.is(up.reachable, true);
      assert.is(up.last_error, null);
      await mint.stop();
      await r.custody.runPass();
      const down = (r.custody.balance().mints as Array<Record<string, unknown>>)[0]!;
      assert.is(down.reachable, false);
      assert.type(down.checked_at, 'number');
      assert.ok(Math.abs((down.checked_at as number) - Date.now() / 1000) < 3600, 'unix seconds');
      assert.match(String(down.last_error), 'keysets cannot be read');
      assert.is(down.balance, 300n, 'the ecash still held');
    } finally {
      await r.close();
      await r.ln.stop();
      rmSync(r.dir, { recursive: true, force: true });
    }
  },
);

test('cashu_balance carries amounts and counts, never a proof, a secret or an invoice', async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint);
  try {
    await r.fund(300);
    mint.meltOutcome('pending');
    await r.custody.payout();
    await r.fund(50);
    const text = JSON.stringify(r.custody.balance(), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    for (const p of r.store.proofsOf(mint.url))
      assert.not.ok(text.includes(p.secret) || text.includes(p.C), 'no proof');
    for (const t of r.store.takes())
      for (const p of t.proofs) assert.not.ok(text.includes(p.secret) || text.includes(p.C), 'no taken proof');
    assert.not.ok(text.includes(r.ln.invoices[0]!.pr), 'no invoice');
    assert.not.ok(/[0-9a-f]{64}/i.test(text), 'no 32-byte hex of any kind (secrets, r, B_, C)');
  } finally {
    await r.close();
    await r.ln.stop();
    await mint.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test.run();
