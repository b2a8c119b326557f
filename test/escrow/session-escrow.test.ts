// tier: chain
// The reference SessionEscrow on a real anvil: the deposit is pulled inside createSession and bound to the terms,
// cumulative buyer-signed receipts are checked on chain, close pays units × price and refunds the rest, the buyer can
// reclaim only after the timeout. The router-side receipt code (src/escrow/receipt.ts) must agree with the
// contract on every digest, so the receipts here are signed from its typed data.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { recoverTypedDataAddress, type Address, type Hex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import {
  compileSolidity,
  randomNonce,
  signAuthorization,
  startChain,
  type Artifact,
  type TestChain,
  type TestToken,
} from '../chain/index.ts';
import {
  creditState,
  keepHighest,
  meteredSteps,
  parseReceipt,
  receiptTypedData,
  sessionIdOf,
  termsNonce,
  verifyReceipt,
  type SessionTerms,
  type UsageReceipt,
} from '../../src/escrow/receipt.ts';
import { readFileSync } from 'node:fs';

const test = suite('SessionEscrow on anvil');
let chain: TestChain;
let usdc: TestToken;
let escrow: Address;
let artifact: Artifact;
let seller: PrivateKeyAccount;
let operator: PrivateKeyAccount;
const RECLAIM_DELAY = 3600;
const PRICE = 50_000n; // 0.05 USDC per step
const MAX_UNITS = 20n; // deposit 1 USDC
const gas: Record<string, bigint[]> = {};

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  const src = readFileSync(new URL('./SessionEscrow.sol', import.meta.url), 'utf8');
  const compiled = compileSolidity({ 'SessionEscrow.sol': src })['SessionEscrow'];
  if (!compiled) throw new Error('SessionEscrow missing from the compiler output');
  artifact = compiled;
  escrow = await chain.deploy(artifact, [BigInt(RECLAIM_DELAY)]);
  seller = chain.newAccount();
  operator = chain.newAccount();
  await chain.fund(seller.address);
  await chain.fund(operator.address);
  await send(seller, 'setOperator', [operator.address, true]);
});
test.after(async () => {
  for (const [step, list] of Object.entries(gas)) console.log(`gas ${step}: ${list.join(', ')}`);
  await chain?.stop();
});

async function send(
  from: PrivateKeyAccount,
  functionName: string,
  args: readonly unknown[],
  label?: string,
): Promise<Hex> {
  const hash = await chain
    .wallet(from)
    .writeContract({ address: escrow, abi: artifact.abi, functionName, args: args as never });
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`${functionName} reverted: ${hash}`);
  if (label) (gas[label] ??= []).push(receipt.gasUsed);
  return hash;
}

async function reverts(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.match(String((err as Error).message), pattern);
    return;
  }
  assert.unreachable(`expected a revert matching ${pattern}`);
}

interface Opened {
  id: Hex;
  buyer: PrivateKeyAccount;
  terms: SessionTerms;
  deposit: bigint;
}

function termsTuple(t: SessionTerms) {
  return { seller: t.seller, pricePerUnit: t.pricePerUnit, maxUnits: t.maxUnits, duration: t.duration, salt: t.salt };
}

async function signDeposit(buyer: PrivateKeyAccount, terms: SessionTerms, value: bigint, validBefore?: bigint) {
  // The window follows the chain's clock, which the reclaim test moves ahead of the wall clock.
  const now = await chain.now();
  return signAuthorization(buyer, usdc, {
    to: escrow,
    value,
    nonce: termsNonce(escrow, terms),
    primaryType: 'ReceiveWithAuthorization',
    validAfter: now - 600n,
    validBefore: validBefore ?? now + 300n,
  });
}

async function open(options: { duration?: bigint } = {}): Promise<Opened> {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 2_000_000n);
  const terms: SessionTerms = {
    seller: seller.address,
    pricePerUnit: PRICE,
    maxUnits: MAX_UNITS,
    duration: options.duration ?? 3600n,
    salt: randomNonce(),
  };
  const deposit = PRICE * MAX_UNITS;
  const { authorization: a, signature } = await signDeposit(buyer, terms, deposit);
  await send(
    operator,
    'createSession',
    [usdc.address, buyer.address, deposit, BigInt(a.validAfter), BigInt(a.validBefore), termsTuple(terms), signature],
    'createSession',
  );
  return { id: sessionIdOf(usdc.address, buyer.address, a.nonce), buyer, terms, deposit };
}

async function receipt(signer: PrivateKeyAccount, sessionId: Hex, units: bigint, nonce = units): Promise<UsageReceipt> {
  const signature = await signer.signTypedData(
    receiptTypedData({ chainId: chain.chainId, escrow }, { sessionId, cumulativeUnits: units, nonce }),
  );
  return { sessionId, cumulativeUnits: units, nonce, signature };
}

async function onChain(id: Hex): Promise<{ units: bigint; status: number }> {
  const s = (await chain.publicClient.readContract({
    address: escrow,
    abi: artifact.abi,
    functionName: 'sessions',
    args: [id],
  })) as readonly unknown[];
  return { status: Number(s[2]), units: s[6] as bigint };
}

test('the contract derives the same terms nonce as the router code', async () => {
  const terms: SessionTerms = {
    seller: seller.address,
    pricePerUnit: PRICE,
    maxUnits: MAX_UNITS,
    duration: 600n,
    salt: randomNonce(),
  };
  const onchain = await chain.publicClient.readContract({
    address: escrow,
    abi: artifact.abi,
    functionName: 'termsNonce',
    args: [termsTuple(terms)],
  });
  assert.is(onchain, termsNonce(escrow, terms));
});

test('createSession pulls the deposit into escrow under the id the router computed', async () => {
  const before = await usdc.balanceOf(escrow);
  const s = await open();
  assert.is(await usdc.balanceOf(escrow), before + s.deposit);
  assert.is(await usdc.balanceOf(s.buyer.address), 2_000_000n - s.deposit);
  assert.equal(await onChain(s.id), { status: 1, units: 0n });
});

test('a facilitator that alters a term (price, units, seller) makes the token refuse the deposit', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 2_000_000n);
  const terms: SessionTerms = {
    seller: seller.address,
    pricePerUnit: PRICE,
    maxUnits: MAX_UNITS,
    duration: 600n,
    salt: randomNonce(),
  };
  const { authorization: a, signature } = await signDeposit(buyer, terms, PRICE * MAX_UNITS);
  for (const altered of [
    { ...terms, pricePerUnit: PRICE * 2n, maxUnits: MAX_UNITS / 2n },
    { ...terms, seller: operator.address },
    { ...terms, duration: 6000n },
  ]) {
    await reverts(
      send(operator, 'createSession', [
        usdc.address,
        buyer.address,
        PRICE * MAX_UNITS,
        BigInt(a.validAfter),
        BigInt(a.validBefore),
        termsTuple(altered),
        signature,
      ]),
      /invalid signature/,
    );
  }
  assert.is(await usdc.balanceOf(buyer.address), 2_000_000n);
});

test('underpaying, expired and replayed deposits are refused; the buyer keeps the money', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 2_000_000n);
  const terms: SessionTerms = {
    seller: seller.address,
    pricePerUnit: PRICE,
    maxUnits: MAX_UNITS,
    duration: 600n,
    salt: randomNonce(),
  };
  const low = await signDeposit(buyer, terms, PRICE * MAX_UNITS - 1n);
  await reverts(
    send(operator, 'createSession', [
      usdc.address,
      buyer.address,
      PRICE * MAX_UNITS - 1n,
      BigInt(low.authorization.validAfter),
      BigInt(low.authorization.validBefore),
      termsTuple(terms),
      low.signature,
    ]),
    /deposit below/,
  );
  const now = await chain.now();
  const expired = await signDeposit(buyer, terms, PRICE * MAX_UNITS, now - 1n);
  await reverts(
    send(operator, 'createSession', [
      usdc.address,
      buyer.address,
      PRICE * MAX_UNITS,
      BigInt(expired.authorization.validAfter),
      BigInt(expired.authorization.validBefore),
      termsTuple(terms),
      expired.signature,
    ]),
    /expired/,
  );
  assert.is(await usdc.balanceOf(buyer.address), 2_000_000n);
  const ok = await signDeposit(buyer, terms, PRICE * MAX_UNITS);
  const args = [
    usdc.address,
    buyer.address,
    PRICE * MAX_UNITS,
    BigInt(ok.authorization.validAfter),
    BigInt(ok.authorization.validBefore),
    termsTuple(terms),
    ok.signature,
  ];
  await send(operator, 'createSession', args);
  await reverts(send(operator, 'createSession', args), /session exists/);
  assert.is(await usdc.balanceOf(buyer.address), 2_000_000n - PRICE * MAX_UNITS);
});

test(
  'cumulative receipts: higher advances, replayed/lower ' + 'is a no-op, forged/other-session/over-max revert',
  async () => {
    const s = await open();
    const other = await open();
    const r3 = await receipt(s.buyer, s.id, 3n);
    await send(operator, 'consume', [s.id, 3n, 3n, r3.signature], 'consume');
    await send(operator, 'consume', [s.id, 3n, 3n, r3.signature]);
    const r2 = await receipt(s.buyer, s.id, 2n);
    await send(operator, 'consume', [s.id, 2n, 2n, r2.signature]);
    assert.is((await onChain(s.id)).units, 3n);
    const forged = await receipt(chain.newAccount(), s.id, 10n);
    await reverts(send(operator, 'consume', [s.id, 10n, 10n, forged.signature]), /not signed by the buyer/);
    const foreign = await receipt(other.buyer, other.id, 10n);
    await reverts(send(operator, 'consume', [s.id, 10n, 10n, foreign.signature]), /not signed by the buyer/);
    const tooMany = await receipt(s.buyer, s.id, MAX_UNITS + 1n);
    await reverts(
      send(operator, 'consume', [s.id, MAX_UNITS + 1n, MAX_UNITS + 1n, tooMany.signature]),
      /above maxUnits/,
    );
    assert.is((await onChain(s.id)).units, 3n);
  },
);

test(
  'only the seller or its operator closes; close with the ' + 'final receipt pays units × price and refunds the rest',
  async () => {
    const s = await open();
    await reverts(send(await fundAndReturn(s.buyer), 'close', [s.id, 0n, 0n, '0x']), /only the seller/);
    const r7 = await receipt(s.buyer, s.id, 7n);
    const sellerBefore = await usdc.balanceOf(seller.address);
    const buyerBefore = await usdc.balanceOf(s.buyer.address);
    await send(operator, 'close', [s.id, 7n, 7n, r7.signature], 'close(+receipt)');
    assert.is((await usdc.balanceOf(seller.address)) - sellerBefore, 7n * PRICE);
    assert.is((await usdc.balanceOf(s.buyer.address)) - buyerBefore, s.deposit - 7n * PRICE);
    assert.equal(await onChain(s.id), { status: 2, units: 7n });
    await reverts(send(operator, 'close', [s.id, 0n, 0n, '0x']), /not active/);
    await reverts(
      send(operator, 'consume', [s.id, 8n, 8n, (await receipt(s.buyer, s.id, 8n)).signature]),
      /not active/,
    );
  },
);

async function fundAndReturn(a: PrivateKeyAccount): Promise<PrivateKeyAccount> {
  await chain.fund(a.address);
  return a;
}

test(
  'the buyer reclaims only after expiresAt + reclaimDelay, ' + 'and recorded consumption still pays the seller',
  async () => {
    const s = await open({ duration: 60n });
    await fundAndReturn(s.buyer);
    const r4 = await receipt(s.buyer, s.id, 4n);
    await send(operator, 'consume', [s.id, 4n, 4n, r4.signature]);
    await reverts(send(s.buyer, 'reclaim', [s.id]), /reclaim not yet open/);
    await chain.increaseTime(60 + RECLAIM_DELAY - 5);
    await reverts(send(s.buyer, 'reclaim', [s.id]), /reclaim not yet open/);
    await chain.increaseTime(10);
    const sellerBefore = await usdc.balanceOf(seller.address);
    const buyerBefore = await usdc.balanceOf(s.buyer.address);
    await send(s.buyer, 'reclaim', [s.id], 'reclaim');
    assert.is((await usdc.balanceOf(seller.address)) - sellerBefore, 4n * PRICE);
    assert.is((await usdc.balanceOf(s.buyer.address)) - buyerBefore, s.deposit - 4n * PRICE);
  },
);

test(
  'router-side verifyReceipt agrees with the contract: ' + 'buyer ok, other signer / session / over-max refused',
  async () => {
    const s = await open();
    const d = { chainId: chain.chainId, escrow };
    const session = { sessionId: s.id, buyer: s.buyer.address, maxUnits: MAX_UNITS };
    const good = await receipt(s.buyer, s.id, 5n);
    await verifyReceipt(
      d,
      parseReceipt({ session_id: s.id, cumulative_units: '5', nonce: '5', signature: good.signature }),
      session,
    );
    const codeOf = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    assert.is(
      await codeOf(verifyReceipt(d, await receipt(chain.newAccount(), s.id, 5n), session)),
      'ERR_RECEIPT_SIGNER',
    );
    assert.is(await codeOf(verifyReceipt(d, { ...good, cumulativeUnits: 6n }, session)), 'ERR_RECEIPT_SIGNER');
    assert.is(
      await codeOf(verifyReceipt(d, await receipt(s.buyer, randomNonce(), 5n), session)),
      'ERR_RECEIPT_SESSION',
    );
    assert.is(await codeOf(verifyReceipt({ ...d, chainId: 8453 }, good, session)), 'ERR_RECEIPT_SIGNER');
    assert.is(
      await codeOf(verifyReceipt(d, await receipt(s.buyer, s.id, MAX_UNITS + 1n), session)),
      'ERR_RECEIPT_INVALID',
    );
    assert.throws(
      () => parseReceipt({ session_id: s.id, cumulative_units: '-1', signature: good.signature }),
      /cumulative_units/,
    );
    assert.throws(
      () => parseReceipt({ session_id: '0x12', cumulative_units: '1', signature: good.signature }),
      /session_id/,
    );
    // the one the router verified is the one the chain accepts
    await send(operator, 'consume', [s.id, 5n, 5n, good.signature]);
    assert.is((await onChain(s.id)).units, 5n);
  },
);

/** The ECDSA twin (r, n − s, v flipped): recovers to the same signer, refused by EIP-2 checks. */
function highSTwin(signature: Hex): Hex {
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = parseInt(signature.slice(130, 132), 16);
  const highS = (n - s).toString(16).padStart(64, '0');
  return `${signature.slice(0, 66)}${highS}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

test(
  "the high-s twin of a buyer's receipt: the contract " + 'refuses it, and so does the router (verifyReceipt)',
  async () => {
    const s = await open();
    const d = { chainId: chain.chainId, escrow };
    const session = { sessionId: s.id, buyer: s.buyer.address, maxUnits: MAX_UNITS };
    const good = await receipt(s.buyer, s.id, 4n);
    const twin = { ...good, signature: highSTwin(good.signature) };
    assert.is.not(twin.signature, good.signature);
    // The twin recovers to the buyer too (that is what makes it dangerous), yet the chain never accepts it.
    assert.is(
      await recoverTypedDataAddress({ ...receiptTypedData(d, twin), signature: twin.signature }),
      s.buyer.address,
    );
    await reverts(send(operator, 'consume', [s.id, 4n, 4n, twin.signature]), /bad signature/);
    const codeOf = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    assert.is(
      await codeOf(
        verifyReceipt(
          d,
          parseReceipt({ session_id: s.id, cumulative_units: '4', nonce: '4', signature: twin.signature }),
          session,
        ),
      ),
      'ERR_RECEIPT_SIGNER',
    );
    assert.is(await codeOf(verifyReceipt(d, good, session)), 'ok');
    await send(operator, 'consume', [s.id, 4n, 4n, good.signature]);
    assert.is((await onChain(s.id)).units, 4n);
  },
);

test('credit rule and keep-highest (pure)', () => {
  assert.is(creditState(3n, 3n, 1n), 'open');
  assert.is(creditState(4n, 3n, 1n), 'open');
  assert.is(creditState(5n, 3n, 1n), 'awaiting-receipt');
  assert.is(creditState(5n, 5n, 0n), 'open');
  assert.is(creditState(6n, 5n, 0n), 'awaiting-receipt');
  assert.is(meteredSteps(0n, 10n, 5n), 0n);
  assert.is(meteredSteps(1n, 10n, 5n), 1n);
  assert.is(meteredSteps(10n, 10n, 5n), 1n);
  assert.is(meteredSteps(11n, 10n, 5n), 2n);
  assert.is(meteredSteps(1000n, 10n, 5n), 5n);
  const a = { sessionId: '0x01' as Hex, cumulativeUnits: 3n, nonce: 0n, signature: '0x' as Hex };
  assert.equal(keepHighest(undefined, a), { receipt: a, advanced: true });
  assert.equal(keepHighest(a, { ...a, cumulativeUnits: 3n, nonce: 9n }), { receipt: a, advanced: false });
  assert.equal(keepHighest(a, { ...a, cumulativeUnits: 2n }), { receipt: a, advanced: false });
  assert.is(keepHighest(a, { ...a, cumulativeUnits: 4n }).advanced, true);
});

test.run();
