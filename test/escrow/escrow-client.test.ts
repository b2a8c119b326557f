// tier: chain
// The facilitator client (src/escrow/client.ts) against the reference facilitator over SessionEscrow on anvil:
// deposit → receipts verified on the router side → consume → close, balances exact to the step; refusals in both
// dialects, a facilitator that is down (unknown, nothing taken) and one that fails with 5xx (retried, done once).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Address, Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import {
  randomNonce,
  signAuthorization,
  startChain,
  type Artifact,
  type TestChain,
  type TestToken,
} from '../chain/index.ts';
import { compileEscrow, startEscrowFacilitator, type EscrowFacilitator } from './facilitator.ts';
import { EscrowFacilitatorClient } from '../../src/escrow/client.ts';
import {
  creditState,
  keepHighest,
  meteredSteps,
  parseReceipt,
  receiptTypedData,
  termsNonce,
  verifyReceipt,
  type UsageReceipt,
} from '../../src/escrow/receipt.ts';

const test = suite('escrow facilitator client');
let chain: TestChain;
let usdc: TestToken;
let artifact: Artifact;
let escrow: Address;
let seller: PrivateKeyAccount;
let fac: EscrowFacilitator;
let client: EscrowFacilitatorClient;
const PRICE = 50_000n;
const MAX = 20n;

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  artifact = compileEscrow();
  escrow = await chain.deploy(artifact, [3600n]);
  seller = chain.newAccount();
  const operator = chain.newAccount();
  await chain.fund(seller.address);
  await chain.fund(operator.address);
  const h = await chain.wallet(seller).writeContract({
    address: escrow,
    abi: artifact.abi,
    functionName: 'setOperator',
    args: [operator.address, true] as never,
  });
  await chain.publicClient.waitForTransactionReceipt({ hash: h });
  fac = await startEscrowFacilitator(chain, { escrow, artifact, operator, token: usdc.address });
  client = new EscrowFacilitatorClient({ url: fac.url, timeoutMs: 5000, retries: 2, retryDelayMs: 50 });
});
test.after(async () => {
  await fac?.stop();
  await chain?.stop();
});

async function deposit(buyer: PrivateKeyAccount, opts: { value?: bigint; signer?: PrivateKeyAccount } = {}) {
  const terms = { seller: seller.address, pricePerUnit: PRICE, maxUnits: MAX, duration: 1800n, salt: randomNonce() };
  const now = await chain.now();
  const value = opts.value ?? PRICE * MAX;
  const { authorization, signature } = await signAuthorization(opts.signer ?? buyer, usdc, {
    to: escrow,
    value,
    nonce: termsNonce(escrow, terms),
    primaryType: 'ReceiveWithAuthorization',
    validAfter: now - 600n,
    validBefore: now + 300n,
  });
  authorization.from = buyer.address;
  return {
    x402Version: 2 as const,
    paymentPayload: {
      network: fac.network,
      authorization,
      signature,
      extensions: {
        session: {
          type: 'prepaid',
          pricePerUnit: String(PRICE),
          maxUnits: String(MAX),
          duration: '1800',
          seller: seller.address,
          salt: terms.salt,
        },
      },
    },
    paymentRequirements: { asset: usdc.address, amount: String(PRICE * MAX), network: fac.network },
  };
}

async function sign(buyer: PrivateKeyAccount, sessionId: Hex, units: bigint): Promise<UsageReceipt> {
  const signature = await buyer.signTypedData(
    receiptTypedData({ chainId: chain.chainId, escrow }, { sessionId, cumulativeUnits: units, nonce: units }),
  );
  return parseReceipt({ session_id: sessionId, cumulative_units: String(units), nonce: String(units), signature });
}

test('end to end: deposit, metered usage gated on receipts, consume, close — balances exact to the step', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 3_000_000n);
  const sellerBefore = await usdc.balanceOf(seller.address);
  const created = await client.create(await deposit(buyer));
  assert.is(created.status, 'done');
  if (created.status !== 'done') return;
  const id = created.value.sessionId as Hex;
  assert.is(await usdc.balanceOf(buyer.address), 3_000_000n - PRICE * MAX);
  const view = await client.get(fac.network, id);
  assert.is(view.status === 'done' && view.value.buyer.toLowerCase(), buyer.address.toLowerCase());

  // Metering: 1 step = 1 MB; the customer's wallet signs a receipt every 2 steps; credit 1 step.
  const STEP = 1_000_000n;
  const CREDIT = 1n;
  let latest: UsageReceipt | undefined;
  let receipts = 0;
  let gated = 0;
  const session = { sessionId: id, buyer: buyer.address, maxUnits: MAX };
  for (let used = 0n; used <= 7n * STEP; used += STEP / 2n) {
    const steps = meteredSteps(used, STEP, MAX);
    if (creditState(steps, latest?.cumulativeUnits ?? 0n, CREDIT) === 'awaiting-receipt') {
      gated++;
      const r = await sign(buyer, id, steps);
      await verifyReceipt({ chainId: chain.chainId, escrow }, r, session);
      latest = keepHighest(latest, r).receipt;
      receipts++;
      assert.is(creditState(steps, latest.cumulativeUnits, CREDIT), 'open');
    }
    if (latest && latest.cumulativeUnits % 4n === 0n) {
      const c = await client.consume({
        sessionId: id,
        units: String(latest.cumulativeUnits),
        nonce: String(latest.nonce),
        buyerSignature: latest.signature,
        network: fac.network,
      });
      assert.is(c.status, 'done');
    }
  }
  // final: usage 7 steps; the customer signs the last receipt at the end.
  const final = await sign(buyer, id, 7n);
  latest = keepHighest(latest, final).receipt;
  receipts++;
  fac.faults.http500 = 1; // the first close attempt fails: retried, done once
  const closed = await client.close({
    sessionId: id,
    network: fac.network,
    units: '7',
    nonce: '7',
    buyerSignature: latest.signature,
  });
  assert.is(closed.status, 'done');
  if (closed.status !== 'done') return;
  assert.is(closed.value.sellerAmount, String(7n * PRICE));
  assert.is(closed.value.buyerRefund, String(13n * PRICE));
  assert.is((await usdc.balanceOf(seller.address)) - sellerBefore, 7n * PRICE);
  assert.is(await usdc.balanceOf(buyer.address), 3_000_000n - 7n * PRICE);
  assert.ok(gated >= 3);
  console.log(
    `figures: deposit ${PRICE * MAX}, metered 7 steps, receipts ${receipts}, seller ` +
      `paid ${closed.value.sellerAmount}, buyer refunded ${closed.value.buyerRefund}, ` +
      `gas ${JSON.stringify(Object.fromEntries(Object.entries(fac.gas).map(([k, v]) => [k, v.map(String)])))}`,
  );
  const again = await client.close({ sessionId: id, network: fac.network });
  assert.is(again.status === 'refused' && again.reason, 'session_not_active');
});

test('forged and underpaying deposits are refused, nothing taken; x402-rs dialect read the same', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 3_000_000n);
  const forged = await client.create(await deposit(buyer, { signer: chain.newAccount() }));
  assert.is(forged.status === 'refused' && forged.reason, 'invalid_signature');
  fac.faults.dialect = 'x402-rs';
  const low = await client.create(await deposit(buyer, { value: PRICE * MAX - 1n }));
  fac.faults.dialect = 'spec';
  assert.is(low.status === 'refused' && low.reason, 'insufficient_deposit');
  assert.is(await usdc.balanceOf(buyer.address), 3_000_000n);
});

test('facilitator down: create is unknown and takes nothing; stats answer after it is back', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 3_000_000n);
  const req = await deposit(buyer);
  await fac.down();
  const r = await client.create(req);
  assert.is(r.status, 'unknown');
  assert.is(await usdc.balanceOf(buyer.address), 3_000_000n);
  await fac.up();
  const s = await client.stats();
  assert.is(s.status === 'done' && s.value.completed, 1);
  const g = await client.get(fac.network, randomNonce());
  assert.is(g.status === 'refused' && g.httpStatus, 404);
});

test.run();
