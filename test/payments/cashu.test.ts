// tier: fast
// Payment method `cashu` (src/payments/cashu/) through the real merchant and session manager, against the lab mint
// (test/peers/cashu-mint.ts, in-process on loopback) on fake timers: a token pays once; every refusal leaves the
// customer's proofs UNSPENT at the mint; a silent mint is pending, then granted late; a restart resolves open intents.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Merchant, Pricing } from '../../src/merchant/index.ts';
import { createPaymentRegistry } from '../../src/payments/index.ts';
import { CashuMethod } from '../../src/payments/cashu/cashu.ts';
import { CashuStore } from '../../src/payments/cashu/store.ts';
import { damagedTables, scanRecords } from '../../src/storage/index.ts';
import { configFromUci } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { encodeToken } from '../peers/cashu-mint-tokens.ts';
import { setup } from '../sessions/helpers.ts';
import { remaining } from '../../src/sessions/index.ts';
import type { FakeTime } from '../helpers/fake-time.ts';

const MAC = '02:00:00:00:ca:01';
const OTHER = '02:00:00:00:ca:02';

function configFor(dir: string, mint: string, extra = '') {
  return configFromUci(
    parseUci(`
config sluice 'main'
\toption state_dir '${dir}'
config pricing 'time'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '500'
\toption max_steps '1000'
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${mint}'
\toption price_per_step '2'
\toption min_steps '2'
${extra}`),
    { hostname: 'r' },
  );
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  throw new Error('expected a refusal');
}

async function rig(mint: CashuMint, o: { dir?: string; extra?: string; time?: FakeTime } = {}) {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'sluice-cashu-'));
  const config = configFor(dir, mint.url, o.extra);
  const env = await setup(o.time ? { time: o.time } : {});
  const cashu = await CashuMethod.open({ config, sessions: env.manager, clock: env.time, timers: env.time });
  await cashu.refreshKeysets();
  const merchant = new Merchant({
    pricing: new Pricing(config.pricing),
    sessions: env.manager,
    payments: createPaymentRegistry([cashu]),
    clock: env.time,
  });
  const buy = (token: string, mac = MAC) => merchant.purchase({ mac, payment: { method: 'cashu', token } });
  const close = async () => {
    await cashu.close();
    await env.manager.close();
  };
  return { ...env, dir, config, cashu, merchant, buy, close };
}

/** Whether the mint still has every proof of the token unspent (the customer can spend it elsewhere). */
const unspent = (mint: CashuMint, token: string): boolean =>
  mint.tokenYs(token).every((y) => !mint.spent().includes(y));

test(
  'a token pays once: steps = (value − input fees) / ' + 'price; the same token again from any device is refused',
  async () => {
    const mint = await CashuMint.start({ inputFeePpk: 100 });
    const r = await rig(mint);
    try {
      // 21 sat in 3 proofs (16+4+1): fee ceil(300/1000) = 1 → 20 sat net → 10 steps of 60 s.
      const token = await mint.fundToken(21);
      const bought = await r.buy(token);
      assert.is(bought.session.allotment, 600n);
      assert.is(bought.receipt.method, 'cashu');
      assert.is(bought.receipt.paid, 20n);
      assert.not.ok(unspent(mint, token), 'swapped at the mint before the grant');
      assert.is(r.cashu.store.total(), 20n, "held: the swap's outputs");
      assert.is(await codeOf(r.buy(token)), 'ERR_PAYMENT_REPLAYED');
      assert.is(await codeOf(r.buy(token, OTHER)), 'ERR_PAYMENT_REPLAYED');
      assert.not.ok(r.manager.byMac(OTHER));
      assert.is(r.cashu.store.total(), 20n, 'balances unchanged');
      // V3 encoding of other proofs works the same.
      const v3 = await mint.fundToken(8, { version: 3 });
      const topped = await r.buy(v3);
      assert.ok(topped.toppedUp);
      assert.is(r.cashu.store.total(), 27n);
    } finally {
      await r.close();
      await mint.stop();
      rmSync(r.dir, { recursive: true, force: true });
    }
  },
);

test("every refusal before the swap leaves the customer's proofs UNSPENT at the mint", async () => {
  const mint = await CashuMint.start();
  const other = await CashuMint.start();
  const r = await rig(mint, { extra: "\toption max_steps '20'\n\toption max_balance '60'\n" });
  try {
    const cases: Array<[string, string, CashuMint]> = [
      ['ERR_CASHU_MINT_NOT_ACCEPTED', other.issuedToken(8), other],
      ['ERR_CASHU_TOKEN_LOCKED', mint.lockedToken(8), mint],
      ['ERR_CASHU_KEYSET_UNKNOWN', mint.unknownKeysetToken(8, { version: 3 }), mint],
      ['ERR_CASHU_KEYSET_UNKNOWN', mint.unknownKeysetToken(8, { version: 4 }), mint],
      ['ERR_CASHU_UNIT', encodeToken(mint.url, 'usd', mint.issuedProofs(8)), mint],
      ['ERR_CASHU_UNDERPAID', mint.issuedToken(3), mint],
      ['ERR_CASHU_TOO_LARGE', mint.issuedToken(50), mint],
    ];
    for (const [code, token, m] of cases) {
      assert.is(await codeOf(r.buy(token)), code, code);
      // A keyset the mint does not list: the mint cannot name those proofs (nothing of them can be spent there).
      if (code !== 'ERR_CASHU_KEYSET_UNKNOWN')
        assert.ok(unspent(m, token), `${code}: the customer's proofs stay unspent`);
    }
    assert.is(mint.calls('POST /v1/swap'), 0, 'no swap was sent');
    assert.is(await codeOf(r.buy('cashuBnotatoken')), 'ERR_CASHU_TOKEN_INVALID');
    assert.is(await codeOf(r.buy('x'.repeat(10))), 'ERR_CASHU_TOKEN_INVALID');
    // max_balance: 60 sat held at most. 40 fits; another 40 would pass it.
    await r.buy(mint.issuedToken(40));
    const full = mint.issuedToken(40);
    assert.is(await codeOf(r.buy(full, OTHER)), 'ERR_CASHU_BALANCE_FULL');
    assert.ok(unspent(mint, full));
    // A forged token passes everything local; the mint refuses it at the swap: nothing granted, nothing held.
    const forged = mint.forgedToken(8);
    assert.is(await codeOf(r.buy(forged, OTHER)), 'ERR_CASHU_TOKEN_INVALID');
    assert.not.ok(r.manager.byMac(OTHER));
    assert.is(r.cashu.store.total(), 40n);
    assert.equal(
      r.cashu.store.openIntents().filter((i) => i.state === 'open').length,
      0,
      "the refused swap's intent is closed",
    );
    // A token spent elsewhere first: the mint's 11001.
    const proofs = mint.issuedProofs(8);
    const spentElsewhere = encodeToken(mint.url, mint.unit, proofs);
    await (await mint.labWallet()).receive(proofs);
    assert.is(await codeOf(r.buy(spentElsewhere, OTHER)), 'ERR_CASHU_TOKEN_SPENT');
  } finally {
    await r.close();
    await mint.stop();
    await other.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test('a mint that does not answer: pending within the wait, then the session lands when the swap does', async () => {
  const mint = await CashuMint.start();
  const r = await rig(mint);
  try {
    const token = mint.issuedToken(10);
    const held = mint.fault('POST /v1/swap', 'hold', { times: 1 });
    const buying = codeOf(r.buy(token));
    await held.arrived;
    await r.time.advance(10_000);
    assert.is(await buying, 'ERR_CASHU_PENDING');
    assert.not.ok(r.manager.byMac(MAC));
    assert.is(
      await codeOf(r.buy(token, OTHER)),
      'ERR_PAYMENT_IN_PROGRESS',
      'the same token meanwhile, from another device',
    );
    held.release();
    await r.cashu.resolvePending();
    // The held swap finishes on its own, then the late grant (no clock: wait for the promise chain).
    // Real I/O to the mint: wait for it (bounded), asserting nothing about how long it took.
    for (let i = 0; i < 1000 && !r.manager.byMac(MAC); i++) await new Promise((res) => setTimeout(res, 10));
    assert.is(r.manager.byMac(MAC)?.allotment, 300n, 'granted late: 10 sat → 5 steps');
    assert.not.ok(unspent(mint, token));
    assert.is(r.cashu.store.total(), 10n);
  } finally {
    await r.close();
    await mint.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test(
  'a swap the mint applied but whose answer was lost is recovered (NUT-19 replay, or NUT-09 restore) and granted ' +
    'once',
  async () => {
    for (const cached of [true, false]) {
      const mint = await CashuMint.start({ cachedResponses: cached });
      const r = await rig(mint);
      try {
        const token = mint.issuedToken(16);
        mint.fault('POST /v1/swap', 'commit-then-drop', { times: 1 });
        assert.is(
          await codeOf(r.buy(token)),
          'ERR_CASHU_PENDING',
          `${cached ? 'NUT-19' : 'NUT-09'}: no answer is pending`,
        );
        assert.not.ok(unspent(mint, token), 'the mint applied it');
        await r.cashu.resolvePending();
        assert.is(r.manager.byMac(MAC)?.allotment, 480n, 'granted late, 8 steps');
        assert.is(r.cashu.store.total(), 16n);
        assert.is(r.cashu.store.openIntents().length, 0);
        if (!cached) assert.ok(mint.calls('POST /v1/restore') >= 1, 'restored from the stored outputs');
        assert.is(await codeOf(r.buy(token)), 'ERR_PAYMENT_REPLAYED');
      } finally {
        await r.close();
        await mint.stop();
        rmSync(r.dir, { recursive: true, force: true });
      }
    }
  },
);

test(
  'a dropped connection: pending; the mint says PENDING → ' + 'asked again later; UNSPENT → swapped now, granted once',
  async () => {
    const mint = await CashuMint.start();
    const r = await rig(mint);
    try {
      const token = mint.issuedToken(6);
      mint.fault('POST /v1/swap', 'drop', { times: 1 });
      assert.is(await codeOf(r.buy(token)), 'ERR_CASHU_PENDING', 'no answer: the outcome is not known');
      assert.ok(unspent(mint, token), 'the mint applied nothing');
      mint.markPending(mint.tokenYs(token));
      await r.cashu.resolvePending();
      assert.is(mint.calls('POST /v1/swap'), 1, 'PENDING: no swap sent');
      assert.equal(
        r.cashu.store.openIntents().map((i) => i.state),
        ['open'],
      );
      assert.not.ok(r.manager.byMac(MAC));
      mint.clearPending();
      await r.cashu.resolvePending();
      assert.is(r.manager.byMac(MAC)?.allotment, 180n, 'UNSPENT: swapped now and granted late, 3 steps');
      assert.not.ok(unspent(mint, token));
      assert.is(r.cashu.store.total(), 6n);
    } finally {
      await r.close();
      await mint.stop();
      rmSync(r.dir, { recursive: true, force: true });
    }
  },
);

test(
  'custody on flash: 0700 directory, 0600 file; damage ' + 'refuses to open (never read as empty); a torn tail is cut',
  async () => {
    const mint = await CashuMint.start();
    const r = await rig(mint);
    const file = join(r.dir, 'cashu', 'ledger.log');
    try {
      await r.buy(mint.issuedToken(12));
      assert.is(statSync(join(r.dir, 'cashu')).mode & 0o777, 0o700);
      assert.is(statSync(file).mode & 0o777, 0o600);
    } finally {
      await r.close();
    }
    try {
      const good = readFileSync(file);
      assert.not.ok(good.toString('latin1').includes('cashuB'), 'no token text on flash');
      appendFileSync(file, Buffer.from([1, 2, 3]));
      const torn = await CashuStore.open(r.dir);
      assert.is(torn.total(), 12n, 'a torn tail is cut, the rest kept');
      const id = await torn.take(mint.url, torn.proofsOf(mint.url).slice(0, 1), 'payout');
      assert.is(torn.total() < 12n, true, 'a take stops counting at once');
      await torn.cancelTake(id);
      assert.is(torn.total(), 12n);
      await torn.close();
      const damaged = Buffer.from(readFileSync(file));
      damaged[12] = damaged[12]! ^ 0xff;
      writeFileSync(file, Buffer.concat([damaged, damaged]));
      const before = damagedTables()['ledger.log'] ?? 0;
      assert.is(await codeOf(CashuStore.open(r.dir)), 'ERR_CASHU_STORE_DAMAGED');
      assert.is(damagedTables()['ledger.log'], before + 1, 'counted in ubus stats damaged_tables');
    } finally {
      await mint.stop();
      rmSync(r.dir, { recursive: true, force: true });
    }
  },
);

test(
  'a time session topped up with a token ends exactly the ' + 'paid steps later than it would have (not reset to now)',
  async () => {
    const mint = await CashuMint.start();
    const r = await rig(mint);
    try {
      const first = await r.buy(mint.issuedToken(20));
      assert.is(first.session.allotment, 600n, '10 steps of 60 s');
      await r.time.advance(200_000);
      const before = remaining(r.manager.byMac(MAC)!, r.time.now());
      assert.is(before, 400n);
      const topped = await r.buy(mint.issuedToken(10));
      assert.ok(topped.toppedUp);
      assert.is(topped.session.id, first.session.id);
      assert.is(
        remaining(r.manager.byMac(MAC)!, r.time.now()),
        before + 300n,
        'the 5 paid steps added to what was left',
      );
      // It would have ended at 600 s; it ends at 900 s, to the second of fake time.
      await r.time.advance(699_000);
      assert.is(r.manager.byMac(MAC)?.state, 'ACTIVE', 'still on one second before the new end');
      await r.time.advance(1_000);
      assert.not.ok(r.manager.byMac(MAC)?.state === 'ACTIVE', 'ended at the new end');
    } finally {
      await r.close();
      await mint.stop();
      rmSync(r.dir, { recursive: true, force: true });
    }
  },
);

test(
  'custody store: takes leave the balance at once and end spent (change kept) or returned; a compacted file ' +
    'reads back the same',
  async () => {
    const mint = await CashuMint.start();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-cashu-store-'));
    try {
      const store = await CashuStore.open(dir, { compactAfter: 4 });
      const proofs = mint.issuedProofs(15).map((p) => ({
        id: p.id,
        amount: p.amount.toNumber(),
        secret: p.secret,
        C: p.C,
      }));
      await store.addProofs(mint.url, proofs, 'test');
      const other = 'https://other.example';
      await store.addProofs(other, [{ ...proofs[0]!, secret: 'x'.repeat(64) }], 'test');
      assert.equal(
        [...store.balances()],
        [
          [mint.url, 15n],
          [other, BigInt(proofs[0]!.amount)],
        ],
      );
      const leaving = store.proofsOf(mint.url).filter((p) => p.amount >= 4);
      const id = await store.take(mint.url, leaving, 'payout');
      const leftAfterTake = 15n - BigInt(leaving.reduce((s, p) => s + p.amount, 0));
      assert.is(store.balances().get(mint.url), leftAfterTake);
      assert.is(
        await codeOf(store.take(mint.url, leaving, 'again')),
        'ERR_INVALID_ARGUMENT',
        'a proof cannot leave twice',
      );
      await store.finishTake(id, [{ id: proofs[0]!.id, amount: 1, secret: 'change-1', C: proofs[0]!.C }]);
      assert.is(store.balances().get(mint.url), leftAfterTake + 1n, 'NUT-08 change is held');
      const id2 = await store.take(mint.url, store.proofsOf(mint.url).slice(0, 1), 'swap off an old keyset');
      await store.markApplied('cashu:applied-one');
      await store.close();
      // 6 changes, a rewrite after the 4th: the file holds fewer records than changes, and reads back to the same
      // state.
      assert.ok(scanRecords(readFileSync(join(dir, 'cashu', 'ledger.log')), 0).records.length < 6, 'compacted');
      const again = await CashuStore.open(dir);
      assert.equal([...again.balances()], [...store.balances()]);
      assert.is(again.takes().length, 1);
      assert.is(again.takes()[0]!.id, id2);
      assert.ok(again.isApplied('cashu:applied-one'));
      await again.cancelTake(id2);
      assert.is(again.balances().get(mint.url), leftAfterTake + 1n);
      await again.close();
    } finally {
      await mint.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('custody store: a stranded intent is read back stranded, also when compacted; its end clears it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cashu-stranded-'));
  try {
    const intent = (ref: string) => ({
      ref,
      mint: 'https://mint.example',
      mac: '02:00:00:00:00:07',
      at: 1,
      quote: { plan: 'time', metric: 'seconds' as const, steps: '1', allotment: '60', price: '2', stepSize: '60' },
      inputs: [],
      outputs: [],
    });
    const store = await CashuStore.open(dir, { compactAfter: 3 });
    for (const ref of ['ln:a', 'ln:b', 'ln:c']) await store.beginSwap(intent(ref));
    await store.markStranded('ln:a', 1000);
    await store.markStranded('ln:b', 2000);
    await store.markStranded('ln:c', 3000);
    await store.markStranded('ln:b', null);
    await store.dropIntent('ln:c', 'expired unpaid');
    await store.close();
    assert.ok(scanRecords(readFileSync(join(dir, 'cashu', 'ledger.log')), 0).records.length < 8, 'compacted');
    const again = await CashuStore.open(dir);
    assert.equal(
      ['ln:a', 'ln:b', 'ln:c'].map((ref) => again.strandedSince(ref)),
      [1000, null, null],
    );
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
