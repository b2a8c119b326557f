// tier: fast
/**
 * What unpaid Lightning invoices may hold, and for how long (docs/tollgate.md "What an invoice may hold";
 * invoice-slots.ts, intent-looks.ts), against the lab mint (in process on loopback, its fake Lightning node paid on
 * command, on the test's clock):
 *   - many devices (rotated MACs) fill the router's 32 places; a new customer is refused only while all were taken in
 *     the last 2 minutes, then takes the oldest's place; after 10 minutes none holds one (the mint's quote lives an
 *     hour); an invoice that lost its place is still paid, minted and granted;
 *   - invoices past their hold hold no room in max_balance either: tokens get all of it;
 *   - a mint gone for good: the quote is asked about less and less often, then stranded — kept on flash, shown in
 *     ubus stats with its device and amount, holding nothing — and resolved as any other when the mint comes back;
 *   - a restart (the method closed, a new one opened on the same state directory: nothing kept in memory) keeps it
 *     stranded: shown at once, holding no room, asked every 10 minutes, not stranded anew; the mint answering again
 *     (unpaid) is kept too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CashuMethod } from '../../src/payments/cashu/cashu.ts';
import { openQuote, quoteState } from '../../src/payments/cashu/lightning.ts';
import {
  INVOICE_HOLD_MS,
  INVOICE_MIN_HOLD_MS,
  MAX_OPEN_INVOICES,
  MAX_OPEN_INVOICES_PER_DEVICE,
} from '../../src/payments/cashu/invoice-slots.ts';
import { STRANDED_AFTER_LOOKS } from '../../src/payments/cashu/intent-looks.ts';
import { configFromUci } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { FakeTime } from '../helpers/fake-time.ts';
import { setup } from '../sessions/helpers.ts';
import type { Log } from '../../src/log.ts';

const macOf = (n: number) =>
  `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;

async function rig(maxBalance: number) {
  const time = new FakeTime();
  const mint = await CashuMint.start({ autoPay: false, now: () => time.now() });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cashu-invoice-hold-'));
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
\toption max_balance '${maxBalance}'
`),
    { hostname: 'r' },
  );
  // Every request the router sends its mint, answered or not (a closed port counts too): Node publishes each client
  // request as it is made, before it connects.
  let asked = 0;
  const mintHost = new URL(mint.url).host;
  const counting = (message: unknown): void => {
    if ((message as { request: ClientRequest }).request.getHeader('host') === mintHost) asked++;
  };
  subscribe('http.client.request.start', counting);
  const env = await setup({ time });
  const errors: string[] = [];
  const quiet = () => undefined;
  const log: Log = { debug: quiet, info: quiet, warn: quiet, error: (msg) => errors.push(msg) };
  const open = () => CashuMethod.open({ config, sessions: env.manager, clock: time, timers: time, log });
  let cashu = await open();
  await cashu.refreshKeysets();
  /** A restart of the method: the old one closed, a new one reads the state directory (the daemon's start order). */
  const restart = async (): Promise<CashuMethod> => {
    await cashu.close();
    cashu = await open();
    await cashu.refreshKeysets();
    void cashu.resolvePending();
    return cashu;
  };
  /**
   * The test's clock moved on by `ms` in 5 s steps, each step's resolver pass run to its end: a look that writes to the
   * ledger (its fsync is real I/O) finishes before the clock moves past the look it schedules.
   */
  const advance = async (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= 5_000) {
      await time.advance(Math.min(5_000, left));
      await (cashu as unknown as { resolving?: Promise<void> }).resolving;
    }
  };
  const close = async () => {
    unsubscribe('http.client.request.start', counting);
    await cashu.close();
    await env.manager.close();
    await mint.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ...env, mint, cashu, dir, close, restart, advance, errors, asked: () => asked };
}

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  return 'ok';
};

const stats = (cashu: CashuMethod) =>
  cashu.stats() as {
    open_invoices: number;
    invoice_places: number;
    stranded: { count: number; sat: string; intents: Array<Record<string, unknown>> };
  };

test('many MACs fill the places: a customer finds one 2 minutes on, and none is held past 10', async () => {
  const r = await rig(100_000);
  try {
    const devices = MAX_OPEN_INVOICES / MAX_OPEN_INVOICES_PER_DEVICE;
    const first: string[] = [];
    for (let d = 0; d < devices; d++)
      for (let k = 0; k < MAX_OPEN_INVOICES_PER_DEVICE; k++)
        first.push((await openQuote(r.cashu, macOf(d), undefined, 2n)).quote);
    assert.is(stats(r.cashu).invoice_places, MAX_OPEN_INVOICES);
    const customer = macOf(500);
    assert.is(await codeOf(openQuote(r.cashu, customer, undefined, 2n)), 'ERR_PAYMENT_IN_PROGRESS', 'all just taken');
    await r.time.advance(INVOICE_MIN_HOLD_MS / 2);
    assert.is(await codeOf(openQuote(r.cashu, customer, undefined, 2n)), 'ERR_PAYMENT_IN_PROGRESS', 'a minute on');
    await r.time.advance(INVOICE_MIN_HOLD_MS / 2);
    const mine = await openQuote(r.cashu, customer, undefined, 3n);
    assert.is(mine.amount, '6', 'two minutes on, the customer has a place');
    assert.is(stats(r.cashu).invoice_places, MAX_OPEN_INVOICES, 'the oldest gave it up');
    assert.is(stats(r.cashu).open_invoices, MAX_OPEN_INVOICES + 1, 'and is still on flash, still payable');
    // The invoice that gave up its place is paid anyway: minted and granted, nothing lost.
    r.mint.payMintQuote(first[0]!);
    assert.is(await quoteState(r.cashu, first[0]!), 'paid');
    assert.ok(r.manager.byMac(macOf(0)), 'its device has its session');
    assert.is(r.cashu.store.total(), 4n);
    // Ten minutes after they were asked, the attackers' invoices hold nothing; the mint's quotes still live.
    await r.time.advance(INVOICE_HOLD_MS - INVOICE_MIN_HOLD_MS);
    assert.is(stats(r.cashu).invoice_places, 1, "only the customer's, asked 8 minutes ago");
    for (let d = 0; d < devices; d++) await openQuote(r.cashu, macOf(1000 + d), undefined, 2n);
  } finally {
    await r.close();
  }
});

test('invoices past their hold hold no room: tokens get all of max_balance', async () => {
  const r = await rig(1000);
  try {
    for (let d = 0; d < 5; d++) await openQuote(r.cashu, macOf(d), undefined, 50n);
    assert.is(await codeOf(openQuote(r.cashu, macOf(9), undefined, 2n)), 'ERR_PAYMENT_IN_PROGRESS', 'half taken');
    assert.throws(() => r.cashu.room.ensure(501n), /as much ecash as it may/);
    await r.time.advance(INVOICE_HOLD_MS);
    r.cashu.room.ensure(1000n);
    assert.is(stats(r.cashu).open_invoices, 5, 'still on flash until the mint ends them');
  } finally {
    await r.close();
  }
});

test('a mint gone for good: asked less and less, then stranded and shown, then resolved when it is back', async () => {
  const r = await rig(1000);
  try {
    const invoice = await openQuote(r.cashu, macOf(7), undefined, 20n);
    const gone = r.mint.fault('*', 'refuse');
    const before = r.asked();
    await r.advance(40 * 60_000);
    const looks = r.asked() - before;
    assert.ok(looks >= STRANDED_AFTER_LOOKS && looks <= STRANDED_AFTER_LOOKS + 4, `asked ${looks} times in 40 min`);
    const s = stats(r.cashu);
    assert.is(s.stranded.count, 1);
    assert.is(s.stranded.sat, '40');
    assert.is(s.stranded.intents[0]!['mac'], macOf(7));
    assert.not.match(JSON.stringify(s), invoice.quote, 'no quote id in the stats');
    assert.is(s.invoice_places, 0);
    r.cashu.room.ensure(1000n);
    assert.ok(r.cashu.store.intent(`ln:${invoice.quote}`), 'kept on flash: the customer may have paid');
    // The mint is back and the invoice was paid: the page's next poll resolves it.
    await gone.clear();
    r.mint.payMintQuote(invoice.quote);
    assert.is(await quoteState(r.cashu, invoice.quote), 'paid');
    assert.ok(r.manager.byMac(macOf(7)));
    assert.is(r.cashu.store.total(), 40n);
    assert.is(stats(r.cashu).stranded.count, 0);
  } finally {
    await r.close();
  }
});

test('a stranded payment stays stranded across a restart, and so does its mint answering again', async () => {
  const r = await rig(1000);
  try {
    const invoice = await openQuote(r.cashu, macOf(7), undefined, 20n);
    const gone = r.mint.fault('*', 'refuse');
    // Stranded after 8 looks (≈ 21 min); the whole test stays within the quote's hour at the mint.
    await r.advance(25 * 60_000);
    const since = stats(r.cashu).stranded.intents[0]!['since'];
    assert.is(stats(r.cashu).stranded.count, 1);
    assert.is(r.errors.filter((m) => m.includes('kept as stranded')).length, 1, 'told once');
    let cashu = await r.restart();
    const s = stats(cashu);
    assert.is(s.stranded.count, 1, 'still stranded after the restart, before any look');
    assert.is(s.stranded.sat, '40');
    assert.is(s.stranded.intents[0]!['since'], since, 'since when is kept');
    assert.is(s.invoice_places, 0);
    cashu.room.ensure(1000n);
    // Asked at start, then every 10 minutes: not the 8 quick looks of a fresh intent, and not stranded anew.
    const before = r.asked();
    await r.advance(21 * 60_000);
    const looks = r.asked() - before;
    assert.ok(looks >= 1 && looks <= 3, `asked ${looks} times in the 21 min after the restart`);
    assert.is(r.errors.filter((m) => m.includes('kept as stranded')).length, 1, 'not told again');
    assert.is(stats(cashu).stranded.count, 1);
    // The mint answers again, the invoice still unpaid: no longer stranded, and a restart keeps that.
    await gone.clear();
    assert.is(await quoteState(cashu, invoice.quote), 'unpaid');
    assert.is(stats(cashu).stranded.count, 0);
    cashu = await r.restart();
    assert.is(stats(cashu).stranded.count, 0, 'the mint answering again is on flash too');
    r.mint.payMintQuote(invoice.quote);
    assert.is(await quoteState(cashu, invoice.quote), 'paid');
    assert.ok(r.manager.byMac(macOf(7)));
    assert.is(cashu.store.total(), 40n);
  } finally {
    await r.close();
  }
});

test.run();
