// tier: daemon
/**
 * Cashu payout through the real daemon (ubus `cashu_payout`, `cashu_balance`), the lab mint and the lab LNURL server:
 * the melt's answer is dropped after the mint paid, the quote's state read is held, and the daemon is killed -9 right
 * then. After the restart the payout ends paid from the quote's state: one melt at the mint (`calls`), one invoice
 * paid, the change held; cashu_balance shows it, and no reply or log line carries a proof's secret.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { DaemonLab } from '../daemon/harness.ts';
import { CashuMint } from '../peers/cashu-mint.ts';
import { startLnurlServer, type LnurlServer } from '../peers/lnurl-server.ts';
import { CashuStore } from '../../src/payments/cashu/store.ts';
import type { BlobmsgTable } from '../../src/ubus/index.ts';

const test = suite('cashu payout through the daemon');
const A = '02:00:00:00:c6:01';
const MELT = 'POST /v1/melt/bolt11';

let mint: CashuMint;
let ln: LnurlServer;
let lab: DaemonLab;

test.before(async () => {
  mint = await CashuMint.start({ inputFeePpk: 100 });
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
  lab.portal.addClient(A, '10.0.0.61');
  await lab.startDaemon();
});

test.after(async () => {
  await lab?.close();
  await ln?.stop();
  await mint?.stop();
});

const balance = async (): Promise<Record<string, any>> => lab.call('cashu_balance', {}) as Promise<Record<string, any>>;

test(
  "kill -9 while the melt's answer is lost: after the " + 'restart the payout is paid once, read from the quote',
  async () => {
    const token = await mint.fundToken(300);
    const bought = await lab.callStatus('purchase', { mac: A, payment: { method: 'cashu', token } as BlobmsgTable });
    assert.is(bought.status, 0, JSON.stringify(bought.data));
    const held = BigInt((await balance()).total as string);
    assert.ok(held > 250n, `held ${held}`);
    mint.fault(MELT, 'commit-then-drop', { times: 1 });
    const reading = mint.fault('GET /v1/melt/quote/bolt11/:id', 'hold');
    const asked = lab.callStatus('cashu_payout', {}).catch(() => undefined);
    await reading.arrived;
    assert.is(mint.calls(MELT), 1);
    assert.is(mint.ledger.paidInvoices.size, 1, 'the mint paid');
    await lab.stopDaemon('SIGKILL');
    // A new connection first: the call in flight then fails at once instead of waiting out ubus's 20 s timeout.
    await lab.reconnectClient();
    await asked;
    await mint.clearFaults();
    // What the daemon left: the proofs taken (out of the balance), the take open for the restart.
    const store = await CashuStore.open(join(lab.dir, 'state'));
    assert.is(store.takes().length, 1);
    assert.is(store.total(), 0n);
    const taken = store.takes()[0]!.proofs;
    await store.close();
    await lab.startDaemon();
    await lab.waitFor(
      async () => (await balance()).payouts?.[0]?.state === 'paid',
      30_000,
      'the payout resolved as paid',
    );
    assert.is(mint.calls(MELT), 1, 'no second melt');
    assert.is(mint.ledger.paidInvoices.size, 1);
    const b = await balance();
    const p = b.payouts[0];
    assert.is(
      BigInt(p.amount) + BigInt(p.input_fee) + BigInt(p.lightning_fee) + BigInt(p.change),
      held,
      'every sat of the melt accounted',
    );
    assert.is(BigInt(b.total), BigInt(p.change), 'the change is held');
    assert.is(b.mints[0].pending_payouts, 0);
    // Replies and the log: amounts, never a proof (the store read once the daemon stopped).
    const text = JSON.stringify(b) + JSON.stringify(await lab.call('stats', {}));
    await lab.stopDaemon();
    const after = await CashuStore.open(join(lab.dir, 'state'));
    const secrets = [...after.proofsOf(mint.url), ...taken].map((x) => x.secret);
    await after.close();
    for (const s of secrets) {
      assert.not.ok(text.includes(s), 'no secret in cashu_balance or stats');
      assert.not.ok(lab.output.includes(s), 'no secret in the log');
    }
    assert.not.ok(/[0-9a-f]{64}/i.test(JSON.stringify(b)), 'no 32-byte hex in cashu_balance');
    await lab.reconnectClient();
    await lab.startDaemon();
  },
);

test("cashu_payout is admin-only; cashu_balance is a reader's", async () => {
  const { METHODS } = await import('../../src/api/methods.ts');
  assert.is(METHODS.cashu_payout?.adminOnly, true);
  assert.is(METHODS.cashu_balance?.adminOnly, false);
});

test.run();
