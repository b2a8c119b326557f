// tier: daemon
/**
 * A Cashu payout (NUT-05 melt, NUT-08 change) with the real daemon killed -9 at each step of the melt, against the lab
 * mint with several keysets (rotated before the payout, and during one melt) and the lab LNURL server. Every step
 * ends the same way: one Lightning payment per payout, no proof lost (every sat of the melted ecash is the amount,
 * the fees or the change), the change held (docs/tollgate.md "Payout"):
 *   a  the take on flash, the melt's record not (written with the store's own code: no signal lands between two
 *      fsyncs microseconds apart) → the proofs held again, nothing sent
 *   b  the record on flash, the melt lost on its way to the mint → the quote UNPAID, the proofs UNSPENT: held again;
 *      the next payout is the one paid
 *   c  the melt at the mint, not yet applied, the daemon killed; the mint applies it after → paid, read from the quote
 *   d  the mint paid and holds its answer → paid, read from the quote
 *   e  PENDING at the mint; the mint rotates its keyset and the payment lands while the daemon is down → paid, the
 *      change signed on the keyset the blanks named, held (and swapped off it later by the retirement pass)
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { DaemonLab } from '../daemon/harness.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { startLnurlServer, type LnurlServer } from '../peers/lnurl-server.ts';
import { CashuStore } from '../../src/payments/cashu/store.ts';
import type { BlobmsgTable } from '../../src/ubus/index.ts';

const test = suite('cashu payout: kill -9 at each step of the melt');
const A = '02:00:00:00:c7:01';
const MELT = 'POST /v1/melt/bolt11';

let mint: CashuMint;
let ln: LnurlServer;
let lab: DaemonLab;

test.before(async () => {
  mint = await CashuMint.start();
  ln = await startLnurlServer({ invoice: (sat) => mint.invoice(sat) });
  lab = await DaemonLab.create({
    pollInterval: 0.5,
    portalSocket: true,
    extraConfig: `
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${mint.url}'
\toption price_per_step '1'
\toption min_steps '2'
\toption payout_address '${ln.lnurl}'
\toption payout_min '1000000'
`,
  });
  lab.portal.addClient(A, '10.0.0.71');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await ln?.stop();
  await mint?.stop();
});

type Balance = Record<string, any>;
const balance = async (): Promise<Balance> => lab.call('cashu_balance', {}) as Promise<Balance>;
const held = async (): Promise<bigint> => BigInt((await balance()).total as string);

/** Ecash on two keysets: a token on the active one, a rotation, a token on the new one. */
async function fund(): Promise<void> {
  for (const sat of [120, 90]) {
    const token = await mint.fundToken(sat);
    const buy = () => lab.callStatus('purchase', { mac: A, payment: { method: 'cashu', token } as BlobmsgTable });
    let r = await buy();
    // A token on the keyset the mint just made: refused once (unknown), the keysets read again, then taken.
    if (r.status !== 0 && JSON.stringify(r.data).includes('ERR_CASHU_KEYSET_UNKNOWN')) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      r = await buy();
    }
    assert.is(r.status, 0, JSON.stringify(r.data));
    if (sat === 120) mint.rotate();
  }
  assert.ok(mint.keysets().length >= 2);
}

async function killAndRestart(after?: () => Promise<void> | void): Promise<void> {
  await lab.stopDaemon('SIGKILL');
  await lab.reconnectClient();
  await after?.();
  await lab.startDaemon();
}

/**
 * The payout's end: the balance read once nothing is pending, that very reading (a second one could fall inside a
 * retirement swap the custody pass began meanwhile, its ecash out of `total`).
 */
async function settled(what: string): Promise<Balance> {
  let seen: Balance | undefined;
  await lab.waitFor(
    async () => {
      const b = await balance();
      // The retirement pass's swaps off a rotated keyset ended too: their ecash is out of `total` meanwhile, from
      // the take on flash (taken_sat) even before the swap's record lists it (keyset_swaps).
      const m = b.mints[0];
      const done =
        m.pending_payouts === 0 &&
        m.keyset_swaps === 0 &&
        String(m.taken_sat) === '0' &&
        b.payouts.length > 0 &&
        b.payouts[0].state !== 'pending';
      if (done) seen = b;
      return done;
    },
    60_000,
    what,
  );
  return seen!;
}

/** One payout paid, every sat of the melted ecash accounted, the change held, nothing left taken. */
function assertPaid(b: Balance, before: bigint, paidBefore: number): void {
  const p = b.payouts[0];
  assert.is(p.state, 'paid', JSON.stringify(b.payouts));
  assert.is(
    BigInt(p.amount) + BigInt(p.input_fee) + BigInt(p.lightning_fee) + BigInt(p.change),
    before,
    'every sat of the melt accounted',
  );
  assert.ok(BigInt(p.change) > 0n, 'change came back');
  assert.is(BigInt(b.total), BigInt(p.change), 'the change is held');
  assert.is(mint.ledger.paidInvoices.size, paidBefore + 1, 'one Lightning payment');
  assert.is(String(b.mints[0].pending_sat), '0');
}

const payout = () => lab.callStatus('cashu_payout', {}).catch(() => undefined);

test('a: the take on flash, the record not: the proofs held again, nothing sent', async () => {
  await fund();
  const before = await held();
  await lab.stopDaemon();
  const store = await CashuStore.open(join(lab.dir, 'state'));
  await store.take(mint.url, store.proofsOf(mint.url), 'payout (killed before its record)');
  assert.is(store.total(), 0n);
  await store.close();
  const melts = mint.calls(MELT);
  await lab.reconnectClient();
  await lab.startDaemon();
  await lab.waitFor(async () => (await held()) === before, 60_000, 'the taken proofs held again');
  assert.is(mint.calls(MELT), melts, 'no melt');
  // The payout then goes as any other.
  const paid = mint.ledger.paidInvoices.size;
  await payout();
  assertPaid(await settled('the payout'), before, paid);
});

test('b: the record on flash, the melt lost on its way: held again, then one payout paid', async () => {
  await fund();
  const before = await held();
  const paid = mint.ledger.paidInvoices.size;
  const lost = mint.fault(MELT, 'hold', { lose: true, times: 1 });
  const asked = payout();
  await lost.arrived;
  await killAndRestart(() => lost.release());
  await asked;
  let b = await settled('the lost melt resolved');
  assert.is(b.payouts[0].state, 'failed');
  // The proofs held again on the rotated keyset are then swapped off it (out of `total`, in taken_sat meanwhile).
  await lab.waitFor(async () => BigInt((b = await balance()).total) === before, 30_000, 'every proof held again');
  assert.is(BigInt(b.total), before, 'every proof held again');
  assert.is(mint.ledger.paidInvoices.size, paid, 'nothing paid');
  await payout();
  assertPaid(await settled('the second payout'), before, paid);
});

test('c: the melt at the mint, applied after the daemon died: paid, read from the quote', async () => {
  await fund();
  const before = await held();
  const paid = mint.ledger.paidInvoices.size;
  const melts = mint.calls(MELT);
  const arriving = mint.fault(MELT, 'hold', { times: 1 });
  const asked = payout();
  await arriving.arrived;
  await killAndRestart(async () => {
    await arriving.release();
    await lab.waitFor(() => mint.ledger.paidInvoices.size === paid + 1, 10_000, 'the mint applied the melt');
  });
  await asked;
  assertPaid(await settled('the payout'), before, paid);
  assert.is(mint.calls(MELT) - melts, 1, 'one melt');
});

test('d: the mint paid and holds its answer: paid after the restart, read from the quote', async () => {
  await fund();
  const before = await held();
  const paid = mint.ledger.paidInvoices.size;
  const melts = mint.calls(MELT);
  const answer = mint.fault(MELT, 'hold', { when: 'after', times: 1 });
  const asked = payout();
  await answer.arrived;
  await killAndRestart(() => answer.release());
  await asked;
  assertPaid(await settled('the payout'), before, paid);
  assert.is(mint.calls(MELT) - melts, 1, 'one melt');
});

test('e: PENDING, a keyset rotation and the payment landing while the daemon is down: paid, change held', async () => {
  await fund();
  const before = await held();
  const paid = mint.ledger.paidInvoices.size;
  mint.meltOutcome('pending');
  await payout();
  await lab.waitFor(async () => (await balance()).mints[0].pending_payouts === 1, 30_000, 'the melt pending');
  const quote = [...mint.ledger.meltQuotes.values()].find((q) => q.state === 'PENDING')!.quote;
  const blanksOn = mint.keysetId;
  await killAndRestart(() => {
    mint.rotate();
    mint.settleMelt(quote, 'paid');
    mint.meltOutcome('paid');
  });
  const b = await settled('the pending payout read as paid');
  assertPaid(b, before, paid);
  assert.ok(
    mint.keysets().some((k) => k.id === blanksOn && !k.active),
    'the change was signed on a keyset rotated out meanwhile',
  );
});

test.run();
