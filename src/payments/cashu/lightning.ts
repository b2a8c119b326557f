/**
 * Pay with Lightning (docs/tollgate.md "Pay page"): the router asks its mint for a NUT-04 mint quote
 * (a bolt11 invoice) for the tollgate plan's steps, the customer pays the invoice, and the router mints the ecash
 * itself and grants the session. A quote is a swap intent without inputs, reference `ln:<quote id>`, so custody,
 * late grants and the merchant's replay rule (one reference, one session) are the swap's own (cashu.ts, store.ts;
 * LightningPort is what this file takes from the method):
 *   openQuote: the mint quote → the intent with its outputs (secrets and blinding factors) on flash (fsync) before
 *              the invoice is shown: paid after a crash or a restart, it is still this device's
 *   resolveQuote (the resolver, every 5 s while open, and each poll of the page): the quote's state —
 *              UNPAID: later; past its expiry: dropped (nothing was paid, nothing owed)
 *              PAID: POST /v1/mint/bolt11 with the stored outputs → proofs on flash → granted
 *              ISSUED (the mint signed and the answer was lost, or a crash before the proofs were written): a NUT-09
 *              restore of the stored outputs → proofs on flash → granted late
 *              no answer: later, less and less often, then stranded (intent-looks.ts): kept, shown, never dropped
 */
import { createHash } from 'node:crypto';
import { SluiceError } from '../../errors.ts';
import type { PricingPlan, TollgateConfig } from '../../config/index.ts';
import type { Clock } from '../../time.ts';
import type { Quote } from '../types.ts';
import type { MintQuoteClient } from '../../cashu/index.ts';
import type { BalanceRoom } from './balance-room.ts';
import type { MintReads } from './mint-reads.ts';
import { unavailable } from './resolve-intent.ts';
import { CLAIMED, type SwapIntent } from './ledger-state.ts';
import type { CashuStore } from './store.ts';
import { isLightning, LN_PREFIX, type InvoiceSlots } from './invoice-slots.ts';
import { newQuoteKey, QUOTE_SIGNATURE_REFUSED, signQuote } from '../../cashu/index.ts';
import { checkSteps, stepsCap } from './steps.ts';
import { storedQuote } from './token-pricing.ts';
import type { Log } from '../../log.ts';
import type { SwapOutcome } from './resolve-intent.ts';

export { isLightning, LN_PREFIX } from './invoice-slots.ts';

/** NUT-04's code for a quote whose ecash was issued already. */
const QUOTE_ISSUED = 20002;
/** A mint's own exchange (POST /v1/mint/bolt11) waits at most this. */
const MINT_TIMEOUT_MS = 30_000;

export interface LightningInvoice {
  quote: string;
  request: string;
  amount: string;
  expiry: number | null;
  steps: string;
}

/** What the page's poll says. */
export type LightningState = 'unpaid' | 'paid' | 'expired' | 'claimed' | 'unknown';

/**
 * What an invoice takes from the cashu method (cashu.ts): the plan and its price, which decide what is sold; the room,
 * the places and the store, which decide whether it may be; the mint it waits on; and the resolver, which ends it.
 */
export interface LightningPort {
  readonly tollgate: TollgateConfig;
  plan(): PricingPlan;
  quoteOf(steps: bigint): Quote;
  readonly room: BalanceRoom;
  readonly invoiceSlots: InvoiceSlots;
  readonly store: CashuStore;
  readonly clock: Clock;
  readonly mints: MintReads;
  readonly again: { soon(): void };
  resolvePending(ref?: string): Promise<void>;
  /** Whether the reference was applied (the store's record or the sessions' ledger). */
  applied(ref: string): boolean;
}

/** The quote for `steps` of the tollgate plan, its intent on flash, for `mac`. */
export async function openQuote(
  method: LightningPort,
  mac: string,
  ip: string | undefined,
  steps: bigint,
): Promise<LightningInvoice> {
  const t = method.tollgate;
  // The token's own bound (steps.ts): an invoice buys no more than a token may.
  checkSteps(t.minSteps, stepsCap(t, method.plan()), steps);
  const quote = method.quoteOf(steps);
  // Both held from their check until the intent is on flash or the request fails: requests at once are counted
  // against the open-invoice limits and max_balance, and refused before the mint is asked, as one alone is.
  const releaseRoom = method.room.reserve(quote.price);
  let releaseSlot: (() => void) | undefined;
  try {
    releaseSlot = method.invoiceSlots.reserve(mac, method.store, quote.price, t.maxBalance, method.clock.now());
    return await quoteAndWrite(method, mac, ip, quote);
  } finally {
    releaseSlot?.();
    releaseRoom();
  }
}

/** The mint's quote for `quote` and its intent on flash (openQuote holds the room and the slot around it). */
async function quoteAndWrite(
  method: LightningPort,
  mac: string,
  ip: string | undefined,
  quote: Quote,
): Promise<LightningInvoice> {
  const t = method.tollgate;
  const mint = t.mints[0]!;
  const { price, steps } = quote;
  const outputs = await method.mints.outputsFor(mint, await method.mints.freshKeysets(mint), t.unit, price);
  const client = method.mints.client(mint);
  // Locked to a key of the router's where the mint can (NUT-20): nobody who learns the quote id can mint it.
  const key = (await locksQuotes(client)) ? newQuoteKey() : undefined;
  const answer = await client.mintQuote(
    Number(price),
    t.unit,
    `WiFi: ${steps} × ${quote.stepSize} ${quote.metric}`,
    key?.pubkey,
  );
  if (answer.kind !== 'ok') throw unavailable(mint, answer);
  if (answer.value.amount !== 0 && answer.value.amount !== Number(price))
    throw new SluiceError('ERR_CASHU_MINT_UNAVAILABLE', 'the mint quoted another amount');
  const intent: SwapIntent = {
    ref: `${LN_PREFIX}${answer.value.quote}`,
    mint,
    mac,
    at: method.clock.now(),
    inputs: [],
    outputs,
    quote: storedQuote(quote),
    ...(ip !== undefined && ip !== '' && { ip }),
    ...(key && { lock: key.secret }),
    ...(answer.value.expiry !== null && { expiry: answer.value.expiry }),
  };
  await method.store.beginSwap(intent);
  method.again.soon();
  return {
    quote: answer.value.quote,
    request: answer.value.request,
    amount: price.toString(),
    expiry: answer.value.expiry,
    steps: steps.toString(),
  };
}

export interface QuotePort {
  client: MintQuoteClient;
  land(intent: SwapIntent, signatures: readonly string[]): Promise<SwapOutcome>;
  store: CashuStore;
  now(): number;
  log?: Log | undefined;
}

/** Whether each mint locks quotes (NUT-20), as its info said; a mint whose info cannot be read is asked again. */
const lockSupport = new WeakMap<MintQuoteClient, boolean>();
async function locksQuotes(client: MintQuoteClient): Promise<boolean> {
  const known = lockSupport.get(client);
  if (known !== undefined) return known;
  const info = await client.quoteLocks();
  if (info.kind !== 'ok') return false;
  lockSupport.set(client, info.value);
  return info.value;
}

/**
 * A Lightning reference as logs may carry it: never the quote id (an unlocked quote is minted by whoever has it),
 * a short hash of it instead, the same in every line about the quote.
 */
export function loggedRef(ref: string): string {
  if (!isLightning(ref)) return ref;
  return `${LN_PREFIX}#${createHash('sha256').update(ref).digest('hex').slice(0, 12)}`;
}

/** POST /v1/mint/bolt11 with the stored outputs, signed when the quote is locked (the older message after a 20008). */
async function mintQuoted(client: MintQuoteClient, id: string, intent: SwapIntent) {
  if (intent.lock === undefined) return client.mint(id, intent.outputs, MINT_TIMEOUT_MS);
  const v1 = await client.mint(id, intent.outputs, MINT_TIMEOUT_MS, signQuote(intent.lock, id, intent.outputs));
  if (!(v1.kind === 'refused' && v1.code === QUOTE_SIGNATURE_REFUSED)) return v1;
  return client.mint(id, intent.outputs, MINT_TIMEOUT_MS, signQuote(intent.lock, id, intent.outputs, 'legacy'));
}

/** What one look at an open intent came to: 'later' (the mint answered, not yet) or 'unanswered' (it did not). */
export type QuoteOutcome = 'landed' | 'dropped' | 'claimed' | 'later' | 'unanswered';

/**
 * One look at an open quote's intent (the resolver's, for `ln:` references). Every quote ends: minted by us →
 * 'landed'; expired unpaid, or unknown to the mint past its expiry → 'dropped'; ISSUED with none of our outputs
 * signed (someone else minted it: possible only for a quote not locked to our key) → 'claimed', dropped with a record
 * that says so (the page tells the payer; the store remembers it across restarts).
 */
export async function resolveQuote(intent: SwapIntent, port: QuotePort): Promise<QuoteOutcome> {
  const id = intent.ref.slice(LN_PREFIX.length);
  const state = await port.client.mintQuoteState(id);
  if (state.kind === 'refused' && state.status !== 429 && pastExpiry(intent.expiry, port.now())) {
    await port.store.dropIntent(intent.ref, `lightning quote unknown to the mint past its expiry (${state.code})`);
    port.log?.info('cashu: a Lightning quote the mint no longer knows, past its expiry; dropped', {
      reference: loggedRef(intent.ref),
    });
    return 'dropped';
  }
  if (state.kind !== 'ok') return 'unanswered';
  const q = state.value;
  if (q.state === 'UNPAID') {
    if (pastExpiry(q.expiry ?? undefined, port.now())) {
      await port.store.dropIntent(intent.ref, 'lightning quote expired unpaid');
      port.log?.info('cashu: a Lightning quote expired unpaid; dropped', { reference: loggedRef(intent.ref) });
      return 'dropped';
    }
    return 'later';
  }
  if (q.state === 'PAID') {
    const minted = await mintQuoted(port.client, id, intent);
    if (minted.kind === 'ok') {
      await port.land(
        intent,
        minted.value.map((s) => s.C_),
      );
      return 'landed';
    }
    // Refused as issued (a lost answer, ours, or someone else's mint): the restore below reads which; else later.
    if (!(minted.kind === 'refused' && minted.code === QUOTE_ISSUED))
      return minted.kind === 'refused' && minted.status !== 429 ? 'later' : 'unanswered';
  }
  const restored = await port.client.restore(intent.outputs);
  if (restored.kind !== 'ok') return 'unanswered';
  const sigs = intent.outputs.map((o) => restored.value.get(o.B_.toLowerCase())?.C_);
  if (sigs.every((s) => s !== undefined)) {
    await port.land(intent, sigs as string[]);
    return 'landed';
  }
  if (sigs.every((s) => s === undefined)) {
    // Issued, and not on our outputs: its ecash went to whoever minted it. Nothing will come: the place and the room
    // go back, and the payer is told (quoteState: 'claimed').
    await port.store.dropIntent(intent.ref, CLAIMED);
    port.log?.warn('cashu: a paid Lightning quote was minted by someone else; no session, its place released', {
      reference: loggedRef(intent.ref),
      mac: intent.mac,
      sat: intent.quote.price,
    });
    return 'claimed';
  }
  port.log?.warn(
    'cashu: a Lightning quote is issued but the mint restores not all of its outputs; asking again later',
    { reference: loggedRef(intent.ref) },
  );
  return 'later';
}

const pastExpiry = (expiry: number | undefined, now: number): boolean => expiry !== undefined && now > expiry * 1000;

/** The page's poll: the quote resolved now (serialised with the resolver), then what it came to. */
export async function quoteState(method: LightningPort, id: string): Promise<LightningState> {
  const ref = `${LN_PREFIX}${id}`;
  // Asked about now even when the resolver waits longer for it (lapsed, or its mint stranded it).
  if (method.store.intent(ref)) await method.resolvePending(ref);
  const open = method.store.intent(ref);
  if (open) return open.state === 'landed' ? 'paid' : 'unpaid';
  if (method.applied(ref)) return 'paid';
  return method.store.wasClaimed(ref) ? 'claimed' : 'unknown';
}
