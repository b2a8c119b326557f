// tier: fast
// The lab mint's keysets (cashu-mint-keys.ts): each public key is its private key's, every key of a keyset and of two
// keysets is distinct, and the keyset id is the one cashu-ts derives from the public keys.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deriveKeysetId, getPubKeyFromPrivKey, serializeMintKeys } from '@cashu/cashu-ts';
import { bytesToHex } from '@noble/hashes/utils.js';
import { labMintKeys } from './cashu-mint-keys.ts';

test('each public key is its private key times G; the keys are 2^0 … 2^(orders-1), all distinct', () => {
  const a = labMintKeys(64);
  const b = labMintKeys(32, { unit: 'usd' });
  assert.equal(Object.keys(a.privKeys), Object.keys(a.pubKeys));
  assert.equal(
    Object.keys(a.pubKeys),
    Array.from({ length: 64 }, (_, i) => (2n ** BigInt(i)).toString()),
  );
  assert.is(Object.keys(b.pubKeys).length, 32);
  for (const pair of [a, b])
    for (const [amount, priv] of Object.entries(pair.privKeys))
      assert.is(bytesToHex(pair.pubKeys[amount]!), bytesToHex(getPubKeyFromPrivKey(priv)), amount);
  const all = [a, b].flatMap((p) => Object.values(p.privKeys).map(bytesToHex));
  assert.is(new Set(all).size, 96);
  assert.is.not(a.keysetId, b.keysetId);
});

test("the keyset id is cashu-ts's for the keys, unit, fee, expiry and id version", () => {
  for (const options of [
    {},
    { unit: 'usd', input_fee_ppk: 100 },
    { versionByte: 0 },
    { unit: 'sat', expiry: 2_000_000_000 },
  ]) {
    const pair = labMintKeys(32, options);
    const { unit = 'sat', versionByte = 1, ...rest } = options as { unit?: string; versionByte?: number };
    assert.is(
      pair.keysetId,
      deriveKeysetId(serializeMintKeys(pair.pubKeys), { unit, versionByte, ...rest }),
      JSON.stringify(options),
    );
  }
  assert.match(labMintKeys(32, { versionByte: 0 }).keysetId, /^00[0-9a-f]{14}$/);
  assert.match(labMintKeys(32).keysetId, /^01[0-9a-f]{64}$/);
});

test.run();
