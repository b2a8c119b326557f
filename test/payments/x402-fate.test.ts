// tier: chain
// What became of an EIP-3009 authorization (src/x402/authorization-fate.ts) read from a real anvil over JSON-RPC
// (src/x402/chain.ts): a used nonce is only `paid` with the Transfer to pay_to right after AuthorizationUsed; a
// canceled one, or one spent on another transfer, is `void`; and the block search by timestamp.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { toEventSelector, type Address } from 'viem';
import { authorizationFate, rpcReader, type ChainReader } from '../../src/x402/index.ts';
import {
  AUTHORIZATION_CANCELED_TOPIC,
  AUTHORIZATION_USED_TOPIC,
  TRANSFER_TOPIC,
  blockAtOrBefore,
  type AuthorizationQuery,
} from '../../src/x402/authorization-fate.ts';
import {
  cancelAuthorization,
  randomNonce,
  signAuthorization,
  startChain,
  submitAuthorization,
  type TestChain,
  type TestToken,
} from '../chain/index.ts';

const test = suite('x402 authorization fate');
let chain: TestChain;
let usdc: TestToken;
let reader: ChainReader;
let payTo: Address;

test.before(async () => {
  chain = await startChain({ chainId: 84532 });
  usdc = await chain.deployToken({ name: 'USDC', version: '2' });
  reader = rpcReader({ url: chain.rpcUrl, timeoutMs: 5000 });
  payTo = chain.newAccount().address;
});
test.after(async () => {
  await chain?.stop();
});

async function query(from: Address, nonce: `0x${string}`, value: bigint): Promise<AuthorizationQuery> {
  const now = await chain.now();
  return {
    token: usdc.address.toLowerCase(),
    from,
    nonce,
    payTo,
    value,
    validAfter: now - 600n,
    validBefore: now + 300n,
    notBefore: now - 600n,
  };
}

test('the event topics are the keccak256 of the FiatTokenV2 event signatures', () => {
  assert.is(TRANSFER_TOPIC, toEventSelector('Transfer(address,address,uint256)'));
  assert.is(AUTHORIZATION_USED_TOPIC, toEventSelector('AuthorizationUsed(address,bytes32)'));
  assert.is(AUTHORIZATION_CANCELED_TOPIC, toEventSelector('AuthorizationCanceled(address,bytes32)'));
});

test('unused, then paid once the transfer to pay_to lands (its transaction named)', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 1000n);
  const auth = await signAuthorization(buyer, usdc, { to: payTo, value: 1000n });
  const q = await query(buyer.address, auth.authorization.nonce, 1000n);
  assert.equal((await authorizationFate(reader, q)).fate, { kind: 'unused' });
  const hash = await submitAuthorization(chain, usdc, chain.deployer, auth);
  assert.equal((await authorizationFate(reader, q)).fate, { kind: 'paid', transaction: hash.toLowerCase() });
});

test('canceled: the nonce is used but nothing was paid', async () => {
  const buyer = chain.newAccount();
  await chain.fund(buyer.address);
  await usdc.mint(buyer.address, 1000n);
  const auth = await signAuthorization(buyer, usdc, { to: payTo, value: 1000n });
  const hash = await cancelAuthorization(chain, usdc, buyer, auth.authorization.nonce);
  assert.is(await usdc.authorizationState(buyer.address, auth.authorization.nonce), true, 'used on chain');
  const { fate } = await authorizationFate(reader, await query(buyer.address, auth.authorization.nonce, 1000n));
  assert.equal(fate, { kind: 'void', how: 'canceled', transaction: hash.toLowerCase() });
});

test('spent elsewhere: the same nonce signed again to another payee, or for less, is not our payment', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 2000n);
  const nonce = randomNonce();
  await signAuthorization(buyer, usdc, { to: payTo, value: 1000n, nonce }); // the one sent to sluice
  const elsewhere = await signAuthorization(buyer, usdc, { to: buyer.address, value: 1000n, nonce });
  const hash = await submitAuthorization(chain, usdc, chain.deployer, elsewhere);
  const { fate } = await authorizationFate(reader, await query(buyer.address, nonce, 1000n));
  assert.equal(fate, { kind: 'void', how: 'spent-elsewhere', transaction: hash.toLowerCase() });

  const short = randomNonce();
  const less = await signAuthorization(buyer, usdc, { to: payTo, value: 1n, nonce: short });
  await submitAuthorization(chain, usdc, chain.deployer, less);
  assert.is(
    (await authorizationFate(reader, await query(buyer.address, short, 1000n))).fate.kind,
    'void',
    'to pay_to, but 1 instead of 1000',
  );
});

test('used before the window searched: unknown, never paid; final once the head is past validBefore', async () => {
  const buyer = chain.newAccount();
  await usdc.mint(buyer.address, 1000n);
  const auth = await signAuthorization(buyer, usdc, { to: payTo, value: 1000n });
  await submitAuthorization(chain, usdc, chain.deployer, auth);
  await chain.increaseTime(60);
  const now = await chain.now();
  // The window starts at the head block (time travel mined it), after the transfer.
  const q = { ...(await query(buyer.address, auth.authorization.nonce, 1000n)), notBefore: now, validAfter: now - 10n };
  assert.equal((await authorizationFate(reader, q)).fate, { kind: 'unknown', final: false });
  assert.equal((await authorizationFate(reader, { ...q, validBefore: now })).fate, { kind: 'unknown', final: true });
});

test('the chain not answering is ERR_X402_RPC_UNAVAILABLE, not an answer', async () => {
  const silent = rpcReader({ url: 'http://127.0.0.1:9/', timeoutMs: 1000 });
  try {
    await authorizationFate(silent, await query(chain.deployer.address, randomNonce(), 1n));
    assert.unreachable('no answer must throw');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'ERR_X402_RPC_UNAVAILABLE');
  }
});

test('blockAtOrBefore: the last block at or before a time, galloping back from the head', async () => {
  // Blocks 0..1000 at 2 s each from t=1000, read through a counting double.
  let reads = 0;
  const fake: Pick<ChainReader, 'block'> = {
    block: async (n) => {
      reads++;
      const number = n ?? 1000n;
      return { number, timestamp: 1000n + 2n * number };
    },
  };
  const head = { number: 1000n, timestamp: 3000n };
  assert.is(await blockAtOrBefore(fake, 3000n, head), 1000n);
  assert.is(await blockAtOrBefore(fake, 5000n, head), 1000n);
  assert.is(await blockAtOrBefore(fake, 2999n, head), 999n);
  assert.is(await blockAtOrBefore(fake, 2001n, head), 500n);
  assert.is(await blockAtOrBefore(fake, 1000n, head), 0n);
  assert.is(await blockAtOrBefore(fake, 10n, head), 0n);
  reads = 0;
  assert.is(await blockAtOrBefore(fake, 2900n, head), 950n);
  assert.ok(reads <= 14, `a recent time costs few reads (${reads})`);
});

test.run();
