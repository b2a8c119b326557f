// tier: daemon
/**
 * Payment method `cashu` through the real daemon (ubus `purchase`, payment.method 'cashu') and the lab mint: a token
 * pays once; the same token again from another device is refused and nothing more is held; a slow mint answers
 * pending, then the session lands; and a kill -9 at every row of docs/tollgate.md's crash table ends, after the
 * restart, as exactly one session, the token spent once, nothing held without a session. Tokens never reach the log.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { DaemonLab } from '../daemon/harness.ts';
import { stopsWithinWindow } from './stop-window.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { CashuStore } from '../../src/payments/cashu/store.ts';
import { makeOutputs, referenceOf, splitAmount, unblind, type StoredProof } from '../../src/cashu/token.ts';
import { getDecodedToken } from '@cashu/cashu-ts';
import type { BlobmsgTable } from '../../src/ubus/index.ts';
import { encodeToken } from '../peers/cashu-mint-tokens.ts';

const test = suite('cashu through the daemon');
const A = '02:00:00:00:c5:01';
const B = '02:00:00:00:c5:02';

let mint: CashuMint;
let otherMint: CashuMint;
let lab: DaemonLab;

const section = (url: string) => `
config tollgate 'tollgate'
\toption enabled '1'
\toption plan 'time'
\tlist mint '${url}'
\toption price_per_step '1'
\toption min_steps '2'
\toption max_balance '300'
`;

test.before(async () => {
  mint = await CashuMint.start();
  otherMint = await CashuMint.start();
  lab = await DaemonLab.create({
    pollInterval: 0.5,
    portalSocket: true,
    extraConfig: section(mint.url),
  });
  lab.portal.addClient(A, '10.0.0.51');
  lab.portal.addClient(B, '10.0.0.52');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await mint?.stop();
  await otherMint?.stop();
});

const buy = (token: string, mac: string) =>
  lab.callStatus('purchase', { mac, payment: { method: 'cashu', token } as BlobmsgTable });
const codeOf = (r: { data: BlobmsgTable | undefined }): unknown =>
  (r.data?.error as { code?: unknown } | undefined)?.code;
const unspent = (token: string): boolean => mint.tokenYs(token).every((y) => !mint.spent().includes(y));
const spent = (token: string): boolean => mint.tokenYs(token).every((y) => mint.spent().includes(y));
const sessionOf = async (mac: string): Promise<Record<string, unknown> | undefined> => {
  const r = await lab.callStatus('session', { mac });
  const session = r.status === 0 ? (r.data?.session as Record<string, unknown> | undefined) : undefined;
  // The MAC's live session only (an ended one stays listed for a while).
  return session?.state === 'ACTIVE' ? session : undefined;
};
/** Live sessions paid with this reference (the ubus `sessions` list). */
async function sessionsPaidWith(reference: string): Promise<number> {
  const list = (await lab.call('sessions', {})).sessions as Array<Record<string, unknown>>;
  return list.filter((s) => JSON.stringify(s).includes(reference)).length;
}

/** The store as the daemon left it (read while the daemon is stopped). */
async function held(): Promise<{ total: bigint; open: number }> {
  const store = await CashuStore.open(join(lab.dir, 'state'));
  try {
    return { total: store.total(), open: store.openIntents().filter((i) => i.state === 'open').length };
  } finally {
    await store.close();
  }
}

async function restartAfterKill(): Promise<void> {
  await lab.stopDaemon('SIGKILL');
  await lab.reconnectClient();
  await lab.startDaemon();
}

async function endSession(mac: string): Promise<void> {
  const r = await lab.callStatus('terminate', { mac });
  assert.is(r.status, 0, `terminate: ${JSON.stringify(r.data)}`);
}

test(
  'a token pays once; the same token again from another device is refused, nothing more held; tokens are not ' +
    'logged',
  async () => {
    const token = await mint.fundToken(10);
    const first = await buy(token, A);
    assert.is(first.status, 0, JSON.stringify(first.data));
    assert.is((await sessionOf(A))?.allotment, '600', '10 sat → 10 steps of 60 s');
    assert.ok(spent(token));
    const again = await buy(token, B);
    assert.is(codeOf(again), 'ERR_PAYMENT_REPLAYED');
    assert.is(await sessionOf(B), undefined);
    const small = await mint.fundToken(1);
    assert.is(codeOf(await buy(small, B)), 'ERR_CASHU_UNDERPAID');
    assert.ok(unspent(small), 'refused before the swap: the customer keeps it');
    assert.not.ok(lab.output.includes(token.slice(0, 40)), "the token is not in the daemon's output");
    await endSession(A);
    await lab.stopDaemon();
    assert.equal(await held(), { total: 10n, open: 0 });
    await lab.reconnectClient();
    await lab.startDaemon();
  },
);

test(
  "every refusal over ubus purchase leaves the customer's " + 'proofs unspent at the mint, and nothing is held for it',
  async () => {
    const cases: Array<[code: string, token: string, at: CashuMint]> = [
      ['ERR_CASHU_MINT_NOT_ACCEPTED', await otherMint.fundToken(8), otherMint],
      ['ERR_CASHU_UNIT', encodeToken(mint.url, 'usd', await mint.fundProofs(8)), mint],
      ['ERR_CASHU_TOKEN_LOCKED', mint.lockedToken(8), mint],
      ['ERR_CASHU_UNDERPAID', await mint.fundToken(1), mint],
      ['ERR_CASHU_TOO_LARGE', await mint.fundToken(1500), mint],
      ['ERR_CASHU_BALANCE_FULL', await mint.fundToken(295), mint],
    ];
    const swaps = mint.calls('POST /v1/swap');
    for (const [code, token, at] of cases) {
      assert.is(codeOf(await buy(token, B)), code, code);
      assert.ok(
        at.tokenYs(token).every((y) => !at.spent().includes(y)),
        `${code}: unspent at the mint`,
      );
    }
    assert.is(codeOf(await buy(mint.unknownKeysetToken(8), B)), 'ERR_CASHU_KEYSET_UNKNOWN');
    assert.is(codeOf(await buy('cashuBnot-a-token', B)), 'ERR_CASHU_TOKEN_INVALID');
    assert.is(mint.calls('POST /v1/swap'), swaps, 'no swap was sent for any of them');
    assert.is(await sessionOf(B), undefined);
  },
);

test('a slow mint: pending within 10 s, then the session lands', async () => {
  const token = await mint.fundToken(5);
  const slow = mint.fault('POST /v1/swap', 'hold', { times: 1 });
  const r = await buy(token, A);
  assert.is(codeOf(r), 'ERR_CASHU_PENDING');
  assert.is(codeOf(await buy(token, B)), 'ERR_PAYMENT_IN_PROGRESS', 'the same token meanwhile');
  slow.release();
  await lab.waitFor(async () => (await sessionOf(A)) !== undefined, 30_000, 'the late session');
  assert.is((await sessionOf(A))?.allotment, '300');
  assert.ok(spent(token));
  await endSession(A);
});

test('kill -9 after the intent, before the swap reached the mint: the restart swaps and grants once', async () => {
  const token = await mint.fundToken(6);
  // The swap is held before the mint applies anything, and never released: as if the daemon died before sending it.
  const held1 = mint.fault('POST /v1/swap', 'hold', { times: 1 });
  const buying = buy(token, A).catch(() => undefined);
  await held1.arrived;
  await restartAfterKill();
  await buying;
  await lab.waitFor(async () => (await sessionOf(A)) !== undefined, 30_000, 'the session granted after the restart');
  assert.is((await sessionOf(A))?.allotment, '360');
  assert.ok(spent(token), "spent once, by the restart's swap");
  assert.is(codeOf(await buy(token, B)), 'ERR_PAYMENT_REPLAYED');
  await endSession(A);
});

for (const cached of [true, false]) {
  test(
    'kill -9 after the mint committed the swap, its answer not yet back ' +
      `(${cached ? 'NUT-19 replay' : 'NUT-09 restore'}): one session after the restart`,
    async () => {
      mint.setCachedResponses(cached);
      const token = await mint.fundToken(7);
      // Applied (spent, signed), the answer held: the daemon is killed before it sees it.
      const after = mint.fault('POST /v1/swap', 'hold', { times: 1, when: 'after' });
      const buying = buy(token, A).catch(() => undefined);
      await lab.waitFor(() => spent(token), 30_000, 'the mint applying the swap');
      await restartAfterKill();
      await buying;
      after.release();
      await lab.waitFor(
        async () => (await sessionOf(A)) !== undefined,
        30_000,
        'the session recovered after the restart',
      );
      assert.is((await sessionOf(A))?.allotment, '420');
      if (!cached) assert.ok(mint.calls('POST /v1/restore') >= 1);
      assert.is(codeOf(await buy(token, B)), 'ERR_PAYMENT_REPLAYED');
      await endSession(A);
      mint.setCachedResponses(true);
    },
  );
}

test(
  'proofs on flash, session not yet activated (the store as a kill -9 there leaves it): the restart grants it ' +
    'late, once',
  async () => {
    await lab.stopDaemon();
    // The daemon's own store, written by the store code: the intent, the swap done at the mint, the proofs landed.
    const token = await mint.fundToken(8);
    const proofs: StoredProof[] = getDecodedToken(
      token,
      mint.keysets().map((k) => k.id),
    ).proofs.map((p) => ({ id: p.id, amount: p.amount.toNumber(), secret: p.secret, C: p.C }));
    const keys = (await (await fetch(`${mint.url}/v1/keys/${mint.keysetId}`)).json()) as {
      keysets: Array<{ keys: Record<string, string> }>;
    };
    const outputs = makeOutputs(splitAmount(8n, Object.keys(keys.keysets[0]!.keys).map(BigInt)), mint.keysetId);
    const store = await CashuStore.open(join(lab.dir, 'state'));
    const ref = referenceOf(proofs);
    await store.beginSwap({
      ref,
      mint: mint.url,
      mac: A,
      at: Date.now(),
      inputs: proofs,
      outputs,
      quote: { plan: 'time', metric: 'seconds', steps: '8', allotment: '480', price: '8', stepSize: '60' },
    });
    const res = await fetch(`${mint.url}/v1/swap`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: proofs, outputs: outputs.map(({ id, amount, B_ }) => ({ id, amount, B_ })) }),
    });
    const sigs = ((await res.json()) as { signatures: Array<{ C_: string }> }).signatures;
    await store.landSwap(
      ref,
      outputs.map((o, i) => unblind(o, sigs[i]!.C_, keys.keysets[0]!.keys)),
    );
    await store.close();
    const before = (await held()).total;
    await lab.reconnectClient();
    await lab.startDaemon();
    await lab.waitFor(async () => (await sessionOf(A)) !== undefined, 30_000, 'the late grant');
    assert.is((await sessionOf(A))?.allotment, '480');
    assert.is(await sessionsPaidWith(ref), 1, 'exactly one session holds the reference');
    assert.is(codeOf(await buy(token, B)), 'ERR_PAYMENT_REPLAYED');
    await endSession(A);
    await lab.stopDaemon();
    assert.equal(await held(), { total: before, open: 0 }, 'held once, nothing open');
    await lab.reconnectClient();
    await lab.startDaemon();
  },
);

test(
  "SIGTERM while a swap waits on a silent mint: the exchange is ended and the daemon exits within procd's " +
    'window; the restart recovers the session',
  async () => {
    const token = await mint.fundToken(11);
    // Applied at the mint, its answer held: without ending the exchange the stop would wait out the swap's 60 s.
    const after = mint.fault('POST /v1/swap', 'hold', { times: 1, when: 'after' });
    const buying = buy(token, A).catch(() => undefined);
    await lab.waitFor(() => spent(token), 30_000, 'the mint applying the swap');
    await stopsWithinWindow(lab);
    await buying;
    after.release();
    await lab.reconnectClient();
    await lab.startDaemon();
    await lab.waitFor(
      async () => (await sessionOf(A)) !== undefined,
      30_000,
      'the session recovered after the restart',
    );
    assert.is((await sessionOf(A))?.allotment, '660');
    await endSession(A);
  },
);

test(
  'a token spent elsewhere while its intent was open: dropped ' + 'after the restart, no session, nothing held for it',
  async () => {
    const proofs = await mint.fundProofs(9);
    const token = encodeToken(mint.url, mint.unit, proofs);
    const stall = mint.fault('POST /v1/swap', 'hold', { times: 1 });
    const buying = buy(token, A).catch(() => undefined);
    await stall.arrived;
    await lab.stopDaemon('SIGKILL');
    // A new connection first: the call in flight then fails at once instead of waiting out ubus's 20 s timeout.
    await lab.reconnectClient();
    await buying;
    // The customer spends it elsewhere first.
    await (await mint.labWallet()).receive(proofs);
    assert.ok(spent(token));
    const before = (await held()).total;
    await lab.startDaemon();
    // The store is the daemon's while it runs: its log line says the intent was dropped.
    await lab.waitFor(() => lab.output.includes('spent elsewhere before its swap'), 30_000, 'the intent dropped');
    assert.is(await sessionOf(A), undefined);
    await lab.stopDaemon();
    assert.equal(await held(), { total: before, open: 0 });
  },
);

test.run();
