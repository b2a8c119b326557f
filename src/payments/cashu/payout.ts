/**
 * Payout (docs/tollgate.md "Payout"): a mint's held ecash melted (NUT-05) to the operator's Lightning
 * address. The amount is what the balance pays after both fees: amount = held − NUT-02 input fee − the quote's
 * fee_reserve (quoted again for a smaller invoice until it fits); the part of the reserve Lightning did not use comes
 * back as NUT-08 change on blank outputs, and is held again.
 *
 * Never pay twice: the proofs leave through the store's take (on flash) and the melt's record (quote, blank outputs)
 * is on flash before the one POST /v1/melt/bolt11 of a quote; whatever its answer (none, an error, PENDING), what
 * happened is read from the quote's state (GET the quote), never by melting again: PAID → the take finished, the
 * change unblinded and held; PENDING → kept, read again later (and after a restart); UNPAID → the proofs' state read
 * (NUT-07): unspent → given back; spent → gone (not by this melt), said so.
 */
import { SluiceError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import { invoiceFor, payRequestOf, type LnurlOptions } from '../../cashu/index.ts';
import type { MeltClient, MeltQuote } from '../../cashu/index.ts';
import type { MintAnswer } from '../../cashu/index.ts';
import type { MeltOut, OutgoingBook, PayoutState } from './outgoing.ts';
import type { CashuStore } from './store.ts';
import { inputFee, makeOutputs, unblind, yOf, type KeysetEntry, type StoredProof } from '../../cashu/index.ts';

/** A melt waits as long as the mint's Lightning payment may take before it answers (many answer PENDING sooner). */
const MELT_TIMEOUT_MS = 60_000;
/**
 * Quotes asked for smaller invoices before giving up (a fee_reserve that grows as the amount shrinks never converges).
 */
const QUOTE_TRIES = 4;

export interface CustodyPort {
  store: CashuStore;
  book: OutgoingBook;
  client(mint: string): MeltClient;
  keysets(mint: string): Promise<KeysetEntry[]>;
  keysOf(mint: string, id: string): Promise<Record<string, string>>;
  lnurl(): LnurlOptions;
  now(): number;
  log?: Log | undefined;
}

export interface PayoutOutcome {
  mint: string;
  state: PayoutState | 'nothing';
  quote?: string;
  amount?: number;
  inputFee?: number;
  feeReserve?: number;
  lightningFee?: number;
  change?: number;
  reason?: string;
}

const sum = (proofs: readonly { amount: number }[]): number => proofs.reduce((s, p) => s + p.amount, 0);
const mintDown = (mint: string, answer: Exclude<MintAnswer<unknown>, { kind: 'ok' }>): SluiceError =>
  new SluiceError(
    'ERR_CASHU_MINT_UNAVAILABLE',
    (
      'the mint did not quote the payout ' +
      `(${answer.kind === 'refused' ? `${answer.code} ${answer.detail}` : answer.message}); ` +
      'nothing was sent'
    ).slice(0, 300),
    { details: { mint } },
  );

/** Starts a payout of `mint`'s whole held balance to `address`; resolves with its state (pending: read again later). */
export async function startPayout(mint: string, address: string, port: CustodyPort): Promise<PayoutOutcome> {
  const proofs = port.store.proofsOf(mint);
  const total = sum(proofs);
  if (total === 0) return { mint, state: 'nothing', reason: 'nothing held at this mint' };
  const keysets = await port.keysets(mint);
  const fee = Number(inputFee(proofs, keysets));
  const active = keysets.find((k) => k.active && k.unit === 'sat');
  if (!active)
    throw new SluiceError('ERR_CASHU_MINT_UNAVAILABLE', 'the mint lists no active sat keyset (for the change)', {
      details: { mint },
    });
  const client = port.client(mint);
  const request = await payRequestOf(address, port.lnurl());
  let reserve = 0;
  let quote: MeltQuote | undefined;
  for (let i = 0; i < QUOTE_TRIES && !quote; i++) {
    let amount = BigInt(total - fee - reserve);
    if (amount > request.maxSendableMsat / 1000n) amount = request.maxSendableMsat / 1000n;
    if (amount < 1n || amount * 1000n < request.minSendableMsat) {
      throw new SluiceError(
        'ERR_CASHU_PAYOUT_TOO_SMALL',
        `${total} sat held at this mint pay ${fee} sat of input fees and ${reserve} sat of Lightning fee ` +
          'reserve: too little is left to pay out (the address takes at ' +
          `least ${(request.minSendableMsat + 999n) / 1000n} sat)`,
        { details: { mint, held: total, input_fee: fee, fee_reserve: reserve } },
      );
    }
    const invoice = await invoiceFor(request, amount, port.lnurl());
    const answer = await client.meltQuote(invoice, 'sat');
    if (answer.kind !== 'ok') throw mintDown(mint, answer);
    if (BigInt(answer.value.amount) !== amount)
      throw new SluiceError(
        'ERR_CASHU_PAYOUT_LNURL',
        `the mint reads the invoice as ${answer.value.amount} sat, not ${amount}`,
      );
    if (Number(amount) + answer.value.feeReserve + fee <= total) quote = answer.value;
    else reserve = answer.value.feeReserve;
  }
  if (!quote)
    throw new SluiceError(
      'ERR_CASHU_PAYOUT_TOO_SMALL',
      "the mint's fee reserve kept growing as the amount shrank; nothing was sent",
      { details: { mint } },
    );
  // NUT-08: enough blank outputs for any change up to what is overpaid (its binary digits).
  const overpaid = total - fee - quote.amount;
  const blanks = makeOutputs(new Array<number>(overpaid > 0 ? overpaid.toString(2).length : 0).fill(1), active.id);
  const take = await port.store.take(mint, proofs, `payout ${quote.quote}`);
  const record: MeltOut = {
    kind: 'melt',
    take,
    mint,
    quote: quote.quote,
    amount: quote.amount,
    feeReserve: quote.feeReserve,
    inputTotal: total,
    inputFee: fee,
    blanks,
    at: port.now(),
  };
  try {
    await port.book.add(record);
  } catch (err) {
    // Not on flash: the melt is not sent, the proofs are held again.
    await port.store.cancelTake(take);
    throw err;
  }
  port.log?.info('cashu: payout sent to the mint', {
    mint,
    quote: quote.quote,
    amount: quote.amount,
    input_fee: fee,
    fee_reserve: quote.feeReserve,
  });
  const answer = await client.melt(quote.quote, proofs, blanks, MELT_TIMEOUT_MS);
  if (answer.kind === 'ok' && answer.value.state === 'PAID') return finish(record, answer.value, port);
  if (answer.kind === 'ok' && answer.value.state === 'PENDING')
    return outcomeOf(record, 'pending', 'the Lightning payment is under way');
  // No answer, or an error: what the mint did is its quote's state, read now (the melt is never sent again).
  return resolveMelt(record, port);
}

/** A melt on flash to its end as far as the mint can tell now (a restart's, or the pass's, or right after the melt). */
export async function resolveMelt(record: MeltOut, port: CustodyPort): Promise<PayoutOutcome> {
  const state = await port.client(record.mint).meltState(record.quote);
  if (state.kind !== 'ok')
    return pending(
      record,
      port,
      `the quote's state cannot be read (${state.kind === 'refused' ? state.detail : state.message})`,
    );
  if (state.value.state === 'PAID') return finish(record, state.value, port);
  if (state.value.state === 'PENDING') return pending(record, port, 'the Lightning payment is under way');
  // UNPAID: the melt did not happen, or its Lightning payment failed. The proofs' own state says whether they are back.
  return giveBack(
    record.take,
    record.mint,
    port,
    async (why) => {
      await port.book.end(record.take, { state: 'failed', ended: port.now(), reason: why });
      port.log?.warn('cashu: payout failed; the ecash is held again', {
        mint: record.mint,
        quote: record.quote,
        reason: why,
      });
      return outcomeOf(record, 'failed', why);
    },
    () => pending(record, port, "the melt's inputs are still pending at the mint"),
  );
}

async function pending(record: MeltOut, port: CustodyPort, reason: string): Promise<PayoutOutcome> {
  await port.book.note(record.quote, reason).catch(() => undefined);
  return outcomeOf(record, 'pending', reason);
}

/**
 * A take the mint did not honour: its proofs' state read (NUT-07). All unspent → held again; spent → gone (not by us:
 * nothing to recover), the unspent rest held again; pending → later. `done` ends the caller's record.
 */
export async function giveBack<T>(
  take: string,
  mint: string,
  port: Pick<CustodyPort, 'store' | 'client' | 'log'>,
  done: (why: string) => Promise<T>,
  later: () => Promise<T> | T,
): Promise<T> {
  const proofs = port.store.takes().find((t) => t.id === take)?.proofs;
  if (!proofs) return done('already settled');
  // Each Y once: hash_to_curve is a square root or two.
  const ys = proofs.map((p) => yOf(p.secret));
  const states = await port.client(mint).checkstate(ys);
  if (states.kind !== 'ok') return later();
  const found = ys.map((y) => states.value.get(y.toLowerCase()));
  if (found.includes('PENDING')) return later();
  const unspent = proofs.filter((_, i) => found[i] === 'UNSPENT');
  if (unspent.length === proofs.length) {
    await port.store.cancelTake(take);
    return done('the mint did not pay: the ecash is held again');
  }
  await port.store.finishTake(take, []);
  if (unspent.length > 0) await port.store.addProofs(mint, unspent, 'given back');
  port.log?.error('cashu: ecash the router held was spent at the mint by something else', {
    mint,
    spent_sat: sum(proofs) - sum(unspent),
  });
  return done('part of the ecash was spent at the mint by something else');
}

/** PAID: the change unblinded and held, the take finished, the payout's figures kept. */
async function finish(record: MeltOut, quote: MeltQuote, port: CustodyPort): Promise<PayoutOutcome> {
  const change: StoredProof[] = [];
  for (const [i, sig] of quote.change.entries()) {
    const blank = record.blanks[i];
    if (!blank) break;
    change.push(unblind({ ...blank, amount: sig.amount, id: sig.id }, sig.C_, await port.keysOf(record.mint, sig.id)));
  }
  const back = sum(change);
  const lightningFee = record.inputTotal - record.inputFee - record.amount - back;
  await port.store.finishTake(record.take, change);
  await port.book.end(record.take, { state: 'paid', lightningFee, change: back, ended: port.now() });
  port.log?.info('cashu: payout paid', {
    mint: record.mint,
    quote: record.quote,
    amount: record.amount,
    input_fee: record.inputFee,
    lightning_fee: lightningFee,
    change: back,
  });
  return { ...outcomeOf(record, 'paid'), lightningFee, change: back };
}

function outcomeOf(record: MeltOut, state: PayoutState, reason?: string): PayoutOutcome {
  return {
    mint: record.mint,
    state,
    quote: record.quote,
    amount: record.amount,
    inputFee: record.inputFee,
    feeReserve: record.feeReserve,
    ...(reason !== undefined && { reason }),
  };
}
