// tier: chain
/**
 * A kill -9 during /settle leaves a `settling` record; after the restart the resolver (at start) and the customer's
 * retry of the same payload both decide it. Seen once under load in the PaymentMethod suite (kill -9 inside
 * authorize): the two sent /settle again at once, the resolver's landed the transfer, the retry's was refused (the
 * nonce just spent, reason "transaction_failed"), read as "failed, no money moved" from the chain's earlier
 * "unused": the customer was refused with ERR_X402_SETTLE_FAILED and the record the resolver was granting removed.
 * Here the facilitator is a fake (through the method's fetch) that holds the resolver's settle until the retry's is
 * in, so the interleaving is forced, not left to load.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address } from 'viem';
import { configFromUci } from '../../src/config/load.ts';
import { parseUci } from '../../src/config/uci.ts';
import { SluiceError } from '../../src/errors.ts';
import { X402Method } from '../../src/payments/exact/x402-exact.ts';
import type { PaymentContext } from '../../src/payments/types.ts';
import type { Grant, Session } from '../../src/sessions/index.ts';
import type { PurchaseRecord } from '../../src/x402/index.ts';
import { STORE_FILE } from '../../src/x402/store.ts';
import { JsonPeer } from '../peers/json-peer.ts';
import { signAuthorization, startChain, submitAuthorization, type TestChain, type TestToken } from '../chain/index.ts';

const test = suite('x402: the resolver and a retry deciding one settle at once');
const PRICE = 10_000n;
const MAC = '02:00:00:00:0e:01';
let chain: TestChain;
let usdc: TestToken;
let payTo: Address;
let stateDir: string;

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  payTo = chain.newAccount().address;
  stateDir = mkdtempSync(join(tmpdir(), 'sluice-x402-race-'));
});

test.after(async () => {
  await chain?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const configText = (rpc: string, facilitator: string): string => `
config sluice 'main'
\toption state_dir '/tmp/unused'

config pricing 'wifi'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '${PRICE}'
\toption asset '${usdc.address}'
\toption max_steps '100'

config x402 'x402'
\toption enabled '1'
\toption facilitator_url '${facilitator}/'
\toption network 'eip155:84532'
\toption pay_to '${payTo}'
\toption token_name 'USDC'
\toption token_version '2'
\toption timeout '5'
\toption rpc_url '${rpc}'
`;

test('the retry while the resolver settles: not refused as "no money moved"; granted once, record kept', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 1_000_000n);
  const signed = await signAuthorization(buyer, usdc, { to: payTo, value: PRICE });
  const payload = {
    x402Version: 2,
    accepted: {
      scheme: 'exact',
      network: 'eip155:84532',
      amount: PRICE.toString(),
      asset: usdc.address,
      payTo,
      maxTimeoutSeconds: 300,
      extra: { name: 'USDC', version: '2' },
    },
    payload: signed,
  };
  const key = `${buyer.address.toLowerCase()}:${signed.authorization.nonce.toLowerCase()}`;
  // What the killed daemon left: its intent, written before the /settle the kill interrupted (nothing moved).
  const record: PurchaseRecord = {
    key,
    state: 'settling',
    validBefore: signed.authorization.validBefore,
    at: Date.now() - 2000,
    network: 'eip155:84532',
    asset: usdc.address.toLowerCase(),
    value: PRICE.toString(),
    payTo: payTo.toLowerCase(),
    mac: MAC,
    plan: 'wifi',
    metric: 'seconds',
    steps: '1',
    allotment: '60',
    request: { x402Version: 2, paymentPayload: payload, paymentRequirements: {} },
  };
  writeFileSync(join(stateDir, STORE_FILE), `${JSON.stringify({ version: 1, records: [record] })}\n`);

  // The facilitator: the first /settle (the resolver's) waits for the second (the retry's), lands the transfer, and
  // answers success; the second, sent while the transfer is not mined yet, is refused once it is (its own
  // transaction reverted), as @x402's facilitator answers a concurrent settle of the same authorization.
  let settles = 0;
  let secondIn: () => void = () => {};
  const second = new Promise<void>((r) => (secondIn = r));
  let landed: () => void = () => {};
  const mined = new Promise<void>((r) => (landed = r));
  const json = (body: unknown) => ({ status: 200, body });
  const facilitator = await JsonPeer.listen(async ({ path }) => {
    if (!path.endsWith('/settle')) return json({ isValid: true, payer: buyer.address });
    settles++;
    if (settles === 1) {
      // Bounded: a method that never sends the second settle (the fix) must not hang here.
      await Promise.race([second, new Promise((r) => setTimeout(r, 1500))]);
      const transaction = await submitAuthorization(chain, usdc, chain.deployer, signed);
      landed();
      return json({ success: true, transaction, payer: buyer.address, network: 'eip155:84532' });
    }
    secondIn();
    await mined;
    return json({ success: false, errorReason: 'transaction_failed', payer: buyer.address });
  });

  const grants: Grant[] = [];
  let applied = false;
  const sessions = {
    activate: async (g: Grant) => {
      grants.push(g);
      applied = true;
      return { session: {} as Session, toppedUp: false };
    },
    isApplied: () => applied,
  };
  const config = configFromUci(parseUci(configText(chain.rpcUrl, facilitator.url), 'test')).x402;
  const method = await X402Method.open({ config, stateDir, sessions });
  try {
    const resolving = method.resolvePending();
    // The retry arrives while the resolver's /settle is out.
    while (settles === 0) await new Promise((r) => setTimeout(r, 5));
    const ctx: PaymentContext = {
      quote: {
        plan: 'wifi',
        metric: 'seconds',
        steps: 1n,
        allotment: 60n,
        price: PRICE,
        asset: usdc.address,
        currency: 'USDC',
        decimals: 6,
        stepSize: 60n,
        pricePerStep: PRICE,
      },
      request: { mac: MAC, plan: 'wifi', payment: { method: 'x402', payload } },
      now: Date.now(),
    };
    let code = 'granted';
    try {
      await method.authorize(ctx);
    } catch (err) {
      code = (err as SluiceError).code;
    }
    const report = await resolving;
    assert.ok(
      ['granted', 'ERR_X402_SETTLEMENT_PENDING', 'ERR_X402_NONCE_REPLAYED'].includes(code),
      `the retry's answer: ${code} (the money moved: ${await usdc.balanceOf(payTo)})`,
    );
    assert.is(await usdc.balanceOf(payTo), PRICE, 'the money of one purchase moved');
    assert.is(report.granted + (code === 'granted' ? 1 : 0), 1, `granted once: ${JSON.stringify(report)}`);
    assert.is(grants.length, report.granted, 'the resolver granted what it reported');
    assert.is(method.settlementOf(key)?.success, true, 'the settlement is remembered, not removed');
  } finally {
    await method.close();
    await facilitator.close();
  }
});

test.run();
