// tier: fast
/**
 * Every Lightning quote ends (docs/tollgate.md "Pay page"; lightning.ts resolveQuote), against the lab mint (in
 * process on loopback, its fake Lightning node paid on command, NUT-20 on or off):
 *   - a mint with NUT-20: the quote is locked to a key of the router's, nobody else can mint it, the router can;
 *     a mint that verifies only the older message is answered with it after its 20008;
 *   - a mint without it: a paid quote someone else minted is ended — the payer told (`claimed`), its invoice place and
 *     its room in max_balance released, counted in the stats, and still so after the store is opened again;
 *   - a quote the mint no longer knows, past its expiry: dropped.
 * No log line above debug carries a quote id.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CashuMethod } from '../../src/payments/cashu/cashu.ts';
import { openQuote, quoteState } from '../../src/payments/cashu/lightning.ts';
import { CashuStore } from '../../src/payments/cashu/store.ts';
import { configFromUci } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import type { Log, LogFields } from '../../src/log.ts';
import { CashuMint, type CashuMintOptions } from '../peers/cashu-mint.ts';
import { FakeTime } from '../helpers/fake-time.ts';
import { setup } from '../sessions/helpers.ts';

const MAC = '02:00:00:00:ce:01';

async function rig(opts: CashuMintOptions = {}) {
  const time = new FakeTime();
  const mint = await CashuMint.start({ autoPay: false, now: () => time.now(), ...opts });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cashu-quote-end-'));
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
\toption max_balance '1000'
`),
    { hostname: 'r' },
  );
  const lines: Array<{ level: string; text: string }> = [];
  const logAt =
    (level: string) =>
    (msg: string, fields?: LogFields): void => {
      lines.push({
        level,
        text: `${msg} ${JSON.stringify(fields ?? {}, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
      });
    };
  const log: Log = { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') };
  const env = await setup({ time });
  const cashu = await CashuMethod.open({ config, sessions: env.manager, clock: time, timers: time, log });
  await cashu.refreshKeysets();
  const close = async () => {
    await cashu.close();
    await env.manager.close();
    await mint.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  /** Log lines above debug that carry `id`. */
  const leaks = (id: string) => lines.filter((l) => l.level !== 'debug' && l.text.includes(id));
  return { ...env, mint, cashu, dir, close, leaks };
}

const codeOf = async (p: Promise<unknown>): Promise<number | string> => {
  try {
    await p;
  } catch (err) {
    return (err as { code?: number | string }).code ?? String(err);
  }
  return 'ok';
};

test('a mint with NUT-20: the quote is locked to the router, refused to others, minted by the router', async () => {
  const r = await rig();
  try {
    const invoice = await openQuote(r.cashu, MAC, undefined, 5n);
    const atMint = r.mint.mintQuote(invoice.quote);
    assert.match(String(atMint.pubkey), /^0[23][0-9a-f]{64}$/, 'asked with a public key');
    r.mint.payMintQuote(invoice.quote);
    assert.is(await codeOf(r.mint.claimQuote(invoice.quote)), 20008, 'nobody else can mint it');
    assert.is(r.mint.mintQuote(invoice.quote).state, 'PAID');
    assert.is(await quoteState(r.cashu, invoice.quote), 'paid');
    assert.is(r.cashu.store.total(), 10n, 'minted by the router');
    assert.equal(r.leaks(invoice.quote), []);
  } finally {
    await r.close();
  }
});

test('a mint that verifies only the older NUT-20 message: refused 20008 once, then minted with it', async () => {
  const r = await rig({ quoteSigFormats: ['legacy'] });
  try {
    const invoice = await openQuote(r.cashu, MAC, undefined, 3n);
    r.mint.payMintQuote(invoice.quote);
    assert.is(await quoteState(r.cashu, invoice.quote), 'paid');
    assert.is(r.mint.calls('POST /v1/mint/bolt11'), 2);
    assert.is(r.cashu.store.total(), 6n);
  } finally {
    await r.close();
  }
});

test('a mint without NUT-20: a paid quote minted by someone else ends, told, released and counted', async () => {
  const r = await rig({ quoteLocks: false });
  try {
    const first = await openQuote(r.cashu, MAC, undefined, 50n);
    await openQuote(r.cashu, MAC, undefined, 50n);
    assert.is(r.mint.mintQuote(first.quote).pubkey, null, 'not locked: the mint has no NUT-20');
    assert.is(await codeOf(openQuote(r.cashu, MAC, undefined, 2n)), 'ERR_PAYMENT_IN_PROGRESS', 'both places held');
    assert.is(r.cashu.store.exposure(), 200n);
    r.mint.payMintQuote(first.quote);
    const stolen = await r.mint.claimQuote(first.quote);
    assert.is(
      stolen.reduce((s, p) => s + Number(p.amount), 0),
      100,
      'someone else has its ecash',
    );
    assert.is(await quoteState(r.cashu, first.quote), 'claimed');
    assert.is(r.cashu.store.intent(`ln:${first.quote}`), undefined, 'ended');
    assert.is(r.cashu.store.exposure(), 100n, 'its room released');
    assert.is((r.cashu.stats() as { lightning_claimed: number }).lightning_claimed, 1);
    assert.is((await openQuote(r.cashu, MAC, undefined, 2n)).amount, '4', 'its place released');
    assert.equal(r.leaks(first.quote), [], 'the quote id in no log line above debug');
    // Opened again (a restart): still ended, still told.
    await r.cashu.store.close();
    const store = await CashuStore.open(r.dir);
    try {
      assert.is(store.intent(`ln:${first.quote}`), undefined);
      assert.ok(store.wasClaimed(`ln:${first.quote}`));
    } finally {
      await store.close();
    }
  } finally {
    await r.close().catch(() => undefined);
  }
});

test('a quote the mint no longer knows: kept until its expiry, then dropped', async () => {
  const r = await rig();
  try {
    const invoice = await openQuote(r.cashu, MAC, undefined, 2n);
    r.mint.ledger.mintQuotes.delete(invoice.quote);
    await r.cashu.resolvePending();
    assert.is(await quoteState(r.cashu, invoice.quote), 'unpaid', 'not yet past its expiry: it may be a mint glitch');
    await r.time.advance(3601_000);
    await r.cashu.resolvePending();
    assert.is(await quoteState(r.cashu, invoice.quote), 'unknown');
    assert.is(r.cashu.store.exposure(), 0n);
  } finally {
    await r.close();
  }
});

test.run();
