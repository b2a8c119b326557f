// tier: daemon
/**
 * The pay page's "Pay with Lightning" (docs/tollgate.md "Pay page") through the real daemon and the
 * lab mint, whose fake Lightning node pays an invoice on command: POST /cashu/lightning gives the mint's bolt11
 * invoice for the steps, GET /cashu/lightning?quote= reads unpaid until it is paid, then the router mints the ecash
 * (held in custody) and the session is granted once; a kill -9 after the mint signed and before the router had the
 * proofs ends as one session after the restart (NUT-09 restore); a quote that expires unpaid grants nothing.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { DaemonLab } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection } from '../helpers/uci-sections.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { CashuStore } from '../../src/payments/cashu/store.ts';

const test = suite('pay page: Pay with Lightning');
const MAC = '02:00:00:00:c5:51';

let mint: CashuMint;
let mintOffsetMs = 0;
let lab: DaemonLab;
let port: number;

const section = (url: string) => `
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${url}'
\toption price_per_step '2'
\toption min_steps '1'
`;

type Answer = { status: number; body: Record<string, any> };
async function ask(path: string, init?: RequestInit): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  const text = await res.text();
  let body: Record<string, any> = {};
  try {
    body = JSON.parse(text) as Record<string, any>;
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}
const quoteFor = (steps: number) =>
  ask('/cashu/lightning', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ steps }),
  });
const stateOf = async (quote: string): Promise<string> =>
  (await ask(`/cashu/lightning?quote=${quote}`)).body.state as string;
const sessionOf = async (): Promise<Record<string, unknown> | undefined> => {
  const r = await lab.callStatus('session', { mac: MAC });
  const s = r.status === 0 ? (r.data?.session as Record<string, unknown> | undefined) : undefined;
  return s?.state === 'ACTIVE' ? s : undefined;
};
async function sessionsPaidWith(reference: string): Promise<number> {
  const list = (await lab.call('sessions', {})).sessions as Array<Record<string, unknown>>;
  return list.filter((s) => JSON.stringify(s).includes(reference)).length;
}
async function endSession(): Promise<void> {
  assert.is((await lab.callStatus('terminate', { mac: MAC })).status, 0);
  lab.portal.addClient(MAC, '127.0.0.1');
}
async function held(): Promise<bigint> {
  const store = await CashuStore.open(join(lab.dir, 'state'));
  try {
    return store.total();
  } finally {
    await store.close();
  }
}

test.before(async () => {
  mint = await CashuMint.start({ autoPay: false, now: () => Date.now() + mintOffsetMs });
  port = await freePort();
  lab = await DaemonLab.create({
    pollInterval: 0.5,
    portalSocket: true,
    extraConfig: section(mint.url) + httpSection(port),
  });
  lab.portal.addClient(MAC, '127.0.0.1');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await mint?.stop();
});

test('quote → unpaid → paid on command → minted and held → one session; polled again, nothing more', async () => {
  assert.is((await ask('/cashu/offer')).body.lightning, true);
  const q = await quoteFor(4);
  assert.is(q.status, 200, JSON.stringify(q.body));
  assert.match(q.body.request as string, /^lnbc/);
  assert.is(q.body.amount, '8', '4 steps at 2 sat');
  const quote = q.body.quote as string;
  assert.is(await stateOf(quote), 'unpaid');
  assert.is(await sessionOf(), undefined);
  mint.payMintQuote(quote);
  await lab.waitFor(async () => (await stateOf(quote)) === 'paid', 30_000, 'the quote paid and minted');
  assert.is((await sessionOf())?.allotment, '240');
  assert.is(await stateOf(quote), 'paid');
  assert.is(await sessionsPaidWith(`ln:${quote}`), 1, 'one quote, one session');
  assert.is(mint.calls('POST /v1/mint/bolt11'), 1, 'minted once');
  await endSession();
});

test('kill -9 after the mint signed, before the router had the proofs: one session after the restart', async () => {
  const q = await quoteFor(3);
  const quote = q.body.quote as string;
  // The mint applies the mint request and holds its answer: the daemon is killed while it waits.
  const hold = mint.fault('POST /v1/mint/bolt11', 'hold', { when: 'after', times: 1 });
  const before = mint.calls('POST /v1/mint/bolt11');
  mint.payMintQuote(quote);
  await hold.arrived;
  await lab.stopDaemon('SIGKILL');
  await hold.clear();
  await lab.reconnectClient();
  await lab.startDaemon();
  await lab.waitFor(async () => (await sessionOf()) !== undefined, 30_000, 'the late session');
  assert.is((await sessionOf())?.allotment, '180');
  assert.is(await sessionsPaidWith(`ln:${quote}`), 1);
  assert.is(
    mint.calls('POST /v1/mint/bolt11') - before,
    1,
    'never minted a second time: the restore recovered the signatures',
  );
  assert.is(await stateOf(quote), 'paid');
  await endSession();
  await lab.stopDaemon();
  assert.is(await held(), 8n + 6n, "both quotes' ecash held");
  await lab.reconnectClient();
  await lab.startDaemon();
});

test('a quote that expires unpaid is dropped: no session, nothing held', async () => {
  // The mint's clock two hours behind the router's: its one-hour quote is past its expiry when the router reads it.
  mintOffsetMs = -2 * 3600_000;
  const q = await quoteFor(2);
  mintOffsetMs = 0;
  const quote = q.body.quote as string;
  await lab.waitFor(async () => (await stateOf(quote)) === 'unknown', 30_000, 'the expired quote dropped');
  assert.is(await sessionOf(), undefined);
  assert.is(await sessionsPaidWith(`ln:${quote}`), 0);
  await lab.stopDaemon();
  assert.is(await held(), 14n, 'nothing more held');
  const store = await CashuStore.open(join(lab.dir, 'state'));
  try {
    assert.is(store.openIntents().length, 0, 'no open intent left');
  } finally {
    await store.close();
  }
  await lab.reconnectClient();
  await lab.startDaemon();
});

test('a paid quote someone else minted (no NUT-20): told 409, released, and a restart keeps it ended', async () => {
  // The mint ignores the quote's key, as one without NUT-20 does: whoever has the quote id can mint it.
  mint.ledger.quoteLocks = false;
  let output = '';
  try {
    const q = await quoteFor(50);
    const other = await quoteFor(2);
    assert.is(q.status, 200, JSON.stringify(q.body));
    assert.is(other.status, 200, JSON.stringify(other.body));
    const quote = q.body.quote as string;
    assert.is(mint.mintQuote(quote).pubkey, null);
    assert.is((await quoteFor(2)).status, 402, "the device's two places are held");
    // Paid and minted elsewhere while the router is down (killed: no chance to mint it first).
    output += lab.output;
    await lab.stopDaemon('SIGKILL');
    mint.payMintQuote(quote);
    await mint.claimQuote(quote);
    await lab.reconnectClient();
    await lab.startDaemon();
    const told = await ask(`/cashu/lightning?quote=${quote}`);
    assert.is(told.status, 409, JSON.stringify(told.body));
    assert.is((told.body.error as Record<string, unknown>).code, 'ERR_CASHU_QUOTE_CLAIMED');
    assert.is(await sessionsPaidWith(`ln:${quote}`), 0, 'no session');
    const stats = (await lab.call('stats', {})).cashu as Record<string, unknown>;
    assert.is(stats.lightning_claimed, 1);
    assert.is(stats.open_invoices, 1, 'only the other quote is open');
    const again = await quoteFor(2);
    assert.is(again.status, 200, 'its place is free again');
    // A restart does not bring it back.
    output += lab.output;
    await lab.stopDaemon();
    await lab.reconnectClient();
    await lab.startDaemon();
    assert.is((await ask(`/cashu/lightning?quote=${quote}`)).status, 409, 'still told after a restart');
    assert.is(((await lab.call('stats', {})).cashu as Record<string, unknown>).open_invoices, 2);
    output += lab.output;
    const above = output.split('\n').filter((l) => l.includes(quote) && !/\bdebug\b/i.test(l));
    assert.equal(above, [], 'the quote id in no log line above debug');
    // The two open invoices paid: their places free for the next test.
    for (const open of [other, again]) mint.payMintQuote(open.body.quote as string);
    await lab.waitFor(
      async () => ((await lab.call('stats', {})).cashu as Record<string, unknown>).open_invoices === 0,
      30_000,
      'the open quotes minted',
    );
  } finally {
    mint.ledger.quoteLocks = true;
  }
  await endSession();
});

test(
  'a device asking for invoices it never pays gets two ' + 'open at once, then a refusal that writes nothing',
  async () => {
    const first = await quoteFor(2);
    const second = await quoteFor(3);
    assert.is(first.status, 200, JSON.stringify(first.body));
    assert.is(second.status, 200, JSON.stringify(second.body));
    const quotes = mint.calls('POST /v1/mint/quote/bolt11');
    const third = await quoteFor(2);
    assert.is(third.status, 402, JSON.stringify(third.body));
    assert.is((third.body.error as Record<string, unknown>).code, 'ERR_PAYMENT_IN_PROGRESS');
    assert.is(mint.calls('POST /v1/mint/quote/bolt11'), quotes, 'no third quote asked of the mint');
    // Paying one frees a place.
    mint.payMintQuote(first.body.quote as string);
    await lab.waitFor(
      async () => (await stateOf(first.body.quote as string)) === 'paid',
      30_000,
      'the first invoice paid',
    );
    assert.is((await quoteFor(2)).status, 200, 'a place again once one is paid');
    await endSession();
  },
);

test.run();
