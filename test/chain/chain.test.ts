// tier: chain
// The chain kit itself: anvil from npm, TestUSDC compiled with solc-js, EIP-3009 behaving as USDC's does (the x402
// tests rely on it refusing exactly what USDC refuses).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPublicClient, custom, parseSignature, toEventSelector, type Hex } from 'viem';
import { waitForTransactionReceipt } from 'viem/actions';
import { receiptOf } from './receipt.ts';
import {
  cancelAuthorization,
  randomNonce,
  signAuthorization,
  startChain,
  submitAuthorization,
  type TestChain,
  type TestToken,
} from './index.ts';

const test = suite('chain kit');
let chain: TestChain;
let usdc: TestToken;

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
});
test.after(async () => {
  await chain?.stop();
});

async function reverts(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.match(String((err as Error).message), pattern);
    return;
  }
  assert.unreachable(`expected a revert matching ${pattern}`);
}

test('token has the USDC-like domain and 6 decimals on the configured chain id', async () => {
  const read = (functionName: string) =>
    chain.publicClient.readContract({ address: usdc.address, abi: usdc.abi, functionName });
  assert.is(await read('name'), 'USDC');
  assert.is(await read('version'), '2');
  assert.is(await read('decimals'), 6);
  assert.is(await chain.publicClient.getChainId(), 84532);
});

test(
  'a signed transferWithAuthorization moves exactly ' + 'value, marks the nonce used, and cannot be replayed',
  async () => {
    const buyer = chain.newAccount();
    const payee = chain.newAccount();
    const relayer = chain.newAccount();
    await chain.fund(relayer.address);
    await usdc.mint(buyer.address, 5_000_000n);
    const auth = await signAuthorization(buyer, usdc, { to: payee.address, value: 1_250_000n });
    assert.is(await usdc.authorizationState(buyer.address, auth.authorization.nonce), false);
    await submitAuthorization(chain, usdc, relayer, auth);
    assert.is(await usdc.balanceOf(buyer.address), 3_750_000n);
    assert.is(await usdc.balanceOf(payee.address), 1_250_000n);
    assert.is(await usdc.authorizationState(buyer.address, auth.authorization.nonce), true);
    await reverts(submitAuthorization(chain, usdc, relayer, auth), /authorization is used or canceled/);
    assert.is(await usdc.balanceOf(payee.address), 1_250_000n);
  },
);

test('the (v,r,s) form works too (the one x402 facilitators call for 65-byte signatures)', async () => {
  const buyer = chain.newAccount();
  const payee = chain.newAccount();
  await usdc.mint(buyer.address, 1_000n);
  const { authorization: a, signature } = await signAuthorization(buyer, usdc, { to: payee.address, value: 1_000n });
  const sig = parseSignature(signature);
  const hash = await chain.wallet(chain.deployer).writeContract({
    address: usdc.address,
    abi: usdc.abi,
    functionName: 'transferWithAuthorization',
    args: [
      a.from,
      a.to,
      BigInt(a.value),
      BigInt(a.validAfter),
      BigInt(a.validBefore),
      a.nonce,
      Number(sig.v),
      sig.r,
      sig.s,
    ],
  });
  assert.is((await chain.publicClient.waitForTransactionReceipt({ hash })).status, 'success');
  assert.is(await usdc.balanceOf(payee.address), 1_000n);
});

test('refuses what USDC refuses: wrong signer, wrong domain, expired, not yet valid, over balance', async () => {
  const buyer = chain.newAccount();
  const other = chain.newAccount();
  const payee = chain.newAccount();
  await usdc.mint(buyer.address, 10_000n);
  const now = await chain.now();
  // Signed by someone else but claiming `from` = buyer.
  const forged = await signAuthorization(other, usdc, { to: payee.address, value: 1n });
  forged.authorization.from = buyer.address;
  await reverts(submitAuthorization(chain, usdc, chain.deployer, forged), /invalid signature/);
  // Base mainnet's domain name on a token whose name is "USDC".
  const wrongDomain = await signAuthorization(buyer, usdc, {
    to: payee.address,
    value: 1n,
    domain: { name: 'USD Coin' },
  });
  await reverts(submitAuthorization(chain, usdc, chain.deployer, wrongDomain), /invalid signature/);
  const wrongChain = await signAuthorization(buyer, usdc, { to: payee.address, value: 1n, domain: { chainId: 8453 } });
  await reverts(submitAuthorization(chain, usdc, chain.deployer, wrongChain), /invalid signature/);
  const expired = await signAuthorization(buyer, usdc, {
    to: payee.address,
    value: 1n,
    validAfter: 0n,
    validBefore: now - 1n,
  });
  await reverts(submitAuthorization(chain, usdc, chain.deployer, expired), /authorization is expired/);
  const early = await signAuthorization(buyer, usdc, { to: payee.address, value: 1n, validAfter: now + 3600n });
  await reverts(submitAuthorization(chain, usdc, chain.deployer, early), /authorization is not yet valid/);
  const tooMuch = await signAuthorization(buyer, usdc, { to: payee.address, value: 10_001n });
  await reverts(submitAuthorization(chain, usdc, chain.deployer, tooMuch), /exceeds balance/);
  // A malleated signature (s → n − s, v flipped) recovers the same signer; USDC refuses it and so does TestUSDC.
  const good = await signAuthorization(buyer, usdc, { to: payee.address, value: 1n });
  const p = parseSignature(good.signature);
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const s = `0x${(n - BigInt(p.s)).toString(16).padStart(64, '0')}` as Hex;
  const v = p.v === 27n ? 28 : 27;
  const malleated = { ...good, signature: `${p.r}${s.slice(2)}${v.toString(16)}` as Hex };
  await reverts(submitAuthorization(chain, usdc, chain.deployer, malleated), /invalid signature/);
  assert.is(await usdc.balanceOf(buyer.address), 10_000n);
  assert.is(await usdc.balanceOf(payee.address), 0n);
});

test(
  'cancelAuthorization: the nonce becomes used and AuthorizationCanceled is logged, no token moves, the ' +
    'authorization is dead',
  async () => {
    const buyer = chain.newAccount();
    const payee = chain.newAccount();
    await chain.fund(buyer.address);
    await usdc.mint(buyer.address, 700n);
    const auth = await signAuthorization(buyer, usdc, { to: payee.address, value: 700n });
    const hash = await cancelAuthorization(chain, usdc, buyer, auth.authorization.nonce);
    assert.is(await usdc.authorizationState(buyer.address, auth.authorization.nonce), true);
    const logs = (await chain.publicClient.getTransactionReceipt({ hash })).logs;
    assert.is(logs.length, 1, 'one log, no Transfer');
    assert.is(logs[0]!.topics[0], toEventSelector('AuthorizationCanceled(address,bytes32)'));
    assert.is(logs[0]!.topics[2], auth.authorization.nonce);
    await reverts(submitAuthorization(chain, usdc, chain.deployer, auth), /authorization is used or canceled/);
    await reverts(
      cancelAuthorization(chain, usdc, buyer, auth.authorization.nonce),
      /authorization is used or canceled/,
    );
    assert.is(await usdc.balanceOf(buyer.address), 700n);
    assert.is(await usdc.balanceOf(payee.address), 0n);
  },
);

test('receiveWithAuthorization: only the payee may submit it', async () => {
  const buyer = chain.newAccount();
  const payee = chain.newAccount();
  await chain.fund(payee.address);
  await usdc.mint(buyer.address, 500n);
  const { authorization: a, signature } = await signAuthorization(buyer, usdc, {
    to: payee.address,
    value: 500n,
    primaryType: 'ReceiveWithAuthorization',
    nonce: randomNonce(),
  });
  const args = [
    a.from,
    a.to,
    BigInt(a.value),
    BigInt(a.validAfter),
    BigInt(a.validBefore),
    a.nonce,
    signature,
  ] as const;
  await reverts(
    chain
      .wallet(chain.deployer)
      .writeContract({ address: usdc.address, abi: usdc.abi, functionName: 'receiveWithAuthorization', args }),
    /caller must be the payee/,
  );
  const hash = await chain
    .wallet(payee)
    .writeContract({ address: usdc.address, abi: usdc.abi, functionName: 'receiveWithAuthorization', args });
  assert.is((await chain.publicClient.waitForTransactionReceipt({ hash })).status, 'success');
  assert.is(await usdc.balanceOf(payee.address), 500n);
});

test(
  'the stranded-transaction watchdog mines nothing while ' + 'automine is off: a pending transaction stays pending',
  async () => {
    const rpc = (method: string, params: unknown[] = []) =>
      chain.publicClient.request({ method: method as never, params: params as never });
    await rpc('evm_setAutomine', [false]);
    try {
      const hash = await chain.wallet(chain.deployer).sendTransaction({ to: chain.newAccount().address, value: 1n });
      await new Promise((r) => setTimeout(r, 2500)); // past two of the watchdog's looks
      assert.equal(await rpc('txpool_status'), { pending: '0x1', queued: '0x0' });
      assert.not.match(chain.anvil.output(), /automine left/);
      await rpc('evm_setAutomine', [true]); // anvil mines what is pending when automine comes back on
      assert.is((await chain.publicClient.waitForTransactionReceipt({ hash, timeout: 10_000 })).status, 'success');
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
  },
);

test(
  'a receipt wait finds a transaction mined while it looked for a replacement: ' +
    'no second block needed (viem 2.57 skips that block and waits out its timeout)',
  async () => {
    const rpc = (method: string, params: unknown[] = []) =>
      chain.publicClient.request({ method: method as never, params: params as never });
    // A client whose block reads are slow, as under CI's load: the block that mines the transaction arrives while
    // viem's wait is still reading the previous one.
    let mineDuringBlockRead = false;
    let mineAfterReceiptRead = false;
    const slow = createPublicClient({
      chain: chain.chain,
      pollingInterval: 50,
      transport: custom({
        request: async ({ method, params }) => {
          if (method === 'eth_getBlockByNumber' && mineDuringBlockRead) {
            mineDuringBlockRead = false;
            await rpc('evm_mine');
            await new Promise((r) => setTimeout(r, 300));
          }
          const answer = await chain.publicClient.request({ method, params } as never);
          if (method === 'eth_getTransactionReceipt' && mineAfterReceiptRead) {
            mineAfterReceiptRead = false;
            await rpc('evm_mine');
          }
          return answer;
        },
      }),
    });
    await rpc('evm_setAutomine', [false]);
    try {
      const send = () => chain.wallet(chain.deployer).sendTransaction({ to: chain.newAccount().address, value: 1n });
      const viemHash = await send();
      mineDuringBlockRead = true;
      const viemWait = await waitForTransactionReceipt(slow, { hash: viemHash, timeout: 3000 }).then(
        (r) => r.status,
        (err: Error) => err.name,
      );
      console.log(`\n# viem's own wait on that block: ${viemWait}`);

      // The wait here reads no blocks: its transaction is mined right after its first look found no receipt.
      const hash = await send();
      mineAfterReceiptRead = true;
      const receipt = await receiptOf(slow, { hash, timeout: 3000 });
      assert.is(receipt.status, 'success');
      assert.ok(!mineAfterReceiptRead, 'mined after the first look');
      assert.is((await chain.publicClient.waitForTransactionReceipt({ hash, timeout: 3000 })).status, 'success');
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
  },
);

test('snapshot/revert and time travel', async () => {
  const before = await chain.now();
  const id = await chain.snapshot();
  await chain.increaseTime(3600);
  assert.ok((await chain.now()) >= before + 3600n);
  await chain.revert(id);
  assert.ok((await chain.now()) < before + 3600n);
});

test.run();
