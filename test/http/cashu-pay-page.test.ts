// tier: daemon
/**
 * The pay page's "Pay with Cashu" through the real daemon's LAN endpoint and the lab mint: GET
 * /cashu/offer prices the tollgate plan in sat and carries a NUT-18 payment request for the chosen steps; POST
 * /cashu/pay with a pasted token buys once for the caller's device, and each refusal answers its own code (the page
 * words them: cashu-page.js), a swap the mint has not answered is 202 ERR_CASHU_PENDING and lands later.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { PaymentRequest } from '@cashu/cashu-ts';
import { DaemonLab } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection } from '../helpers/uci-sections.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { encodeToken } from '../peers/cashu-mint-tokens.ts';

const test = suite('pay page: Pay with Cashu');
const MAC = '02:00:00:00:c5:41';

let mint: CashuMint;
let other: CashuMint;
let lab: DaemonLab;
let port: number;

const section = (url: string) => `
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${url}'
\toption price_per_step '2'
\toption min_steps '3'
\toption max_steps '50'
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
const pay = (token: string) =>
  ask('/cashu/pay', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
const spent = (m: CashuMint, token: string): boolean => m.tokenYs(token).every((y) => m.spent().includes(y));
const unspent = (m: CashuMint, token: string): boolean => m.tokenYs(token).every((y) => !m.spent().includes(y));
const sessionOf = async (): Promise<Record<string, unknown> | undefined> => {
  const r = await lab.callStatus('session', { mac: MAC });
  const s = r.status === 0 ? (r.data?.session as Record<string, unknown> | undefined) : undefined;
  return s?.state === 'ACTIVE' ? s : undefined;
};
async function endSession(): Promise<void> {
  assert.is((await lab.callStatus('terminate', { mac: MAC })).status, 0);
  // Ending the session deauthenticates the client in the portal stand-in: it joins again, as a phone would.
  lab.portal.addClient(MAC, '127.0.0.1');
}

test.before(async () => {
  mint = await CashuMint.start();
  other = await CashuMint.start();
  port = await freePort();
  // Cashu alone: the LAN endpoint runs for it (the plugin's lanUse), no x402, no vouchers.
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
  await other?.stop();
});

test('the offer: the tollgate plan in sat, and a NUT-18 payment request for the chosen steps', async () => {
  const offer = await ask('/cashu/offer');
  assert.is(offer.status, 200, JSON.stringify(offer.body));
  assert.equal(
    { ...offer.body, payment_request: undefined },
    {
      plan: 'time',
      metric: 'seconds',
      step_size: '60',
      unit: 'sat',
      price_per_step: '2',
      min_steps: '3',
      max_steps: '50',
      mints: [mint.url],
      steps: '3',
      payment_request: undefined,
      lightning: true,
    },
  );
  const request = PaymentRequest.fromEncodedRequest(offer.body.payment_request as string);
  assert.ok((offer.body.payment_request as string).startsWith('creqA'));
  assert.is(Number(request.amount), 6, 'min_steps × price_per_step');
  assert.is(request.unit, 'sat');
  assert.equal(request.mints, [mint.url]);
  assert.ok(request.singleUse);
  const ten = await ask('/cashu/offer?steps=10');
  assert.is(Number(PaymentRequest.fromEncodedRequest(ten.body.payment_request as string).amount), 20);
  assert.is((await ask('/cashu/offer?steps=2')).body.error?.code, 'ERR_INVALID_ARGUMENT', 'below min_steps');
  assert.is((await ask('/cashu/offer?steps=51')).status, 400, 'above max_steps');
  assert.is((await ask('/cashu/offer?steps=x')).status, 400);
});

test("a pasted token pays once for the caller's device; pasted again it is a replay", async () => {
  const token = await mint.fundToken(10);
  // As a wallet's share sheet hands it over: with the URI scheme and a line break.
  const first = await pay(`cashu:${token.slice(0, 30)}\n${token.slice(30)}`);
  assert.is(first.status, 200, JSON.stringify(first.body));
  assert.is(first.body.session?.allotment, '300', '10 sat at 2 sat a step → 5 steps of 60 s');
  assert.is((await sessionOf())?.allotment, '300');
  assert.ok(spent(mint, token));
  const again = await pay(token);
  assert.is(again.status, 402);
  assert.is(again.body.error?.code, 'ERR_PAYMENT_REPLAYED');
  assert.is((await sessionOf())?.allotment, '300', 'nothing added');
  assert.not.ok(lab.output.includes(token.slice(5, 45)), "the token is not in the daemon's output");
  await endSession();
});

test('each refusal answers its code and takes nothing: underpaid, another mint, spent, not a token', async () => {
  const small = await mint.fundToken(5);
  const under = await pay(small);
  assert.equal([under.status, under.body.error?.code], [402, 'ERR_CASHU_UNDERPAID']);
  assert.ok(unspent(mint, small));
  const foreign = await other.fundToken(10);
  const wrong = await pay(foreign);
  assert.equal([wrong.status, wrong.body.error?.code], [402, 'ERR_CASHU_MINT_NOT_ACCEPTED']);
  assert.ok(unspent(other, foreign));
  // Spent elsewhere first: the lab wallet swaps it away, then it is pasted here.
  const proofs = await mint.fundProofs(8);
  const gone = encodeToken(mint.url, mint.unit, proofs);
  await (await mint.labWallet()).receive(proofs);
  const spentAnswer = await pay(gone);
  assert.equal([spentAnswer.status, spentAnswer.body.error?.code], [402, 'ERR_CASHU_TOKEN_SPENT']);
  assert.equal(
    [(await pay('hello')).body.error?.code, (await pay('')).body.error?.code],
    ['ERR_CASHU_TOKEN_INVALID', 'ERR_CASHU_TOKEN_INVALID'],
  );
  const notJson = await ask('/cashu/pay', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: 'x',
  });
  assert.equal([notJson.status, notJson.body.error?.code], [400, 'ERR_INVALID_ARGUMENT']);
  assert.is(await sessionOf(), undefined, 'no session from any of them');
});

test('a mint that has not answered: 202 pending ("do not pay again"), then the session lands once', async () => {
  const token = await mint.fundToken(6);
  const slow = mint.fault('POST /v1/swap', 'hold', { times: 1 });
  const r = await pay(token);
  assert.equal([r.status, r.body.error?.code], [202, 'ERR_CASHU_PENDING']);
  const twice = await pay(token);
  assert.equal(
    [twice.status, twice.body.error?.code],
    [402, 'ERR_PAYMENT_IN_PROGRESS'],
    'paid again meanwhile: nothing more',
  );
  slow.release();
  await lab.waitFor(async () => (await sessionOf()) !== undefined, 30_000, 'the late session');
  assert.is((await sessionOf())?.allotment, '180');
  await endSession();
});

test("the page's words for every refusal exist in its five languages", () => {
  const src = readFileSync(new URL('../../files/usr/share/sluice/portal/cashu-page.js', import.meta.url), 'utf8');
  const sandbox = {} as {
    SluiceCashuPage?: { WORDS: Record<string, Record<string, string>>; refusalKey(code: string): string | null };
  };
  new Function('globalThis', src)(sandbox);
  const page = sandbox.SluiceCashuPage!;
  const codes = [
    'ERR_CASHU_PENDING',
    'ERR_CASHU_TOKEN_SPENT',
    'ERR_CASHU_MINT_NOT_ACCEPTED',
    'ERR_CASHU_UNDERPAID',
    'ERR_CASHU_TOO_LARGE',
    'ERR_CASHU_TOKEN_INVALID',
    'ERR_CASHU_TOKEN_LOCKED',
    'ERR_CASHU_MINT_UNAVAILABLE',
    'ERR_CASHU_BALANCE_FULL',
    'ERR_PAYMENT_REPLAYED',
  ];
  for (const lang of ['en', 'de', 'es', 'fr', 'pt']) {
    for (const code of codes) assert.ok(page.WORDS[lang]![page.refusalKey(code)!], `${lang} ${code}`);
  }
});

test.run();
