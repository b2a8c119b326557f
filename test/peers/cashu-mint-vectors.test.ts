// tier: fast
/**
 * The cashubtc/nuts test vectors (test/fixtures/cashu-nuts, copied unchanged; read here from the spec's own text)
 * through the primitives the lab mint (test/peers/cashu-mint.ts) is built on and the token encoder it adds. Mint and
 * client share @cashu/cashu-ts, so a bug common to both would hide from a wallet-against-mint test: these vectors are
 * the independent check (docs/testing.md, "The lab Cashu mint").
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Amount,
  blindMessage,
  constructUnblindedSignature,
  createBlindSignature,
  createDLEQProof,
  deriveKeysetId,
  deriveSecretAndBlindingFactor,
  getDecodedToken,
  getEncodedToken,
  getKeysetIdInt,
  getPubKeyFromPrivKey,
  hashToCurve,
  hash_e,
  hasValidDleq,
  pointFromHex,
  verifyDLEQProof,
  verifyDLEQProof_reblind,
  verifyUnblindedSignature,
} from '@cashu/cashu-ts';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { pbkdf2Sync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dleqHolds, signBlinded, signedBy } from './cashu-mint-sign.ts';
import { encodeToken } from './cashu-mint-tokens.ts';
import { checkQuoteSignature, nut20Message } from './cashu-mint-nut20.ts';
import { MintError } from './cashu-mint-wire.ts';
import { quoteSigMessage, signQuote } from '../../src/cashu/quote-lock.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { signMintQuote, verifyMintQuoteSignature } from '@cashu/cashu-ts';
import { startCashuMint } from './cashu-mint.ts';
import { jsonExchange } from './cashu-request.ts';
import { loadCashuLib } from '../../src/cashu/loader.ts';

// cashu-ts and secp256k1 loaded as the daemon loads them before any of sluice's Cashu code runs: without it, that code
// would reach them through the loader's synchronous fallback, a second copy beside this file's, which compiles anew
// and builds its own base-point tables (~0.1-0.2 s of CPU a file).
await loadCashuLib();

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/cashu-nuts/${name}`, import.meta.url), 'utf8');
const nut00 = fixture('00-tests.md');
const nut01 = fixture('01-tests.md');
const nut02 = fixture('02-tests.md');
const nut12 = fixture('12-tests.md');
const nut13 = fixture('13-tests.md');
const nut20 = fixture('20-test.md');

function all(text: string, re: RegExp): RegExpExecArray[] {
  return [...text.matchAll(re)];
}

/** The ```json blocks of a text, parsed (the NUT files write strict JSON in them, save the CBOR diagnostics of V4). */
function jsonBlocks(text: string): unknown[] {
  return all(text, /```json\n([\s\S]*?)```/g)
    .map((m) => m[1]!)
    .filter((b) => !b.includes("h'"))
    .map((b) => JSON.parse(b));
}

/**
 * Section of `text` from the heading `from` to the next heading of that level or higher (a `#` in a code block is a
 * comment).
 */
function section(text: string, from: string): string {
  const start = text.indexOf(from);
  assert.ok(start >= 0, `no section ${from}`);
  const level = /^#+/.exec(from)![0].length;
  const lines = text.slice(start + from.length).split('\n');
  let fenced = false;
  const end = lines.findIndex((line) => {
    if (line.startsWith('```')) fenced = !fenced;
    return !fenced && new RegExp(`^#{1,${level}} `).test(line);
  });
  return (end < 0 ? lines : lines.slice(0, end)).join('\n');
}

const hex = (p: { toHex(compressed: boolean): string }): string => p.toHex(true);

test('NUT-00 hash_to_curve: every vector', () => {
  const vectors = all(nut00, /Message: (\w+)\nPoint: +(\w+)/g);
  assert.is(vectors.length, 3);
  for (const [, message, point] of vectors) assert.is(hex(hashToCurve(hexToBytes(message!))), point);
});

test('NUT-00 blinded messages: B_ = Y + rG for every (x, r)', () => {
  const vectors = all(nut00, /x: +(\w+).*\nr: +(\w+).*\nB_: (\w+)/g);
  assert.is(vectors.length, 2);
  for (const [, x, r, B_] of vectors) assert.is(hex(blindMessage(hexToBytes(x!), BigInt(`0x${r}`)).B_), B_);
});

test('NUT-00 blind signatures: C_ = k·B_, as the mint signs', () => {
  const vectors = all(nut00, /mint private key: (\w+)\nB_: (\w+)\nC_: (\w+)/g);
  assert.is(vectors.length, 2);
  for (const [, k, B_, C_] of vectors)
    assert.is(hex(createBlindSignature(pointFromHex(B_!), hexToBytes(k!), '00').C_), C_);
});

test("the lab mint's own signing: the spec's C_, a DLEQ that cashu-ts verifies, proofs checked against the key", () => {
  for (const [, k, B_, C_] of all(nut00, /mint private key: (\w+)\nB_: (\w+)\nC_: (\w+)/g)) {
    const key = hexToBytes(k!);
    const signed = signBlinded(pointFromHex(B_!), key);
    assert.is(hex(signed.C_), C_);
    const K = pointFromHex(bytesToHex(getPubKeyFromPrivKey(key)));
    assert.ok(verifyDLEQProof(signed, pointFromHex(B_!), signed.C_, K), 'its DLEQ verifies');
    assert.not.ok(
      verifyDLEQProof({ ...signed, s: signBlinded(pointFromHex(B_!), key).s }, pointFromHex(B_!), signed.C_, K),
    );
  }
  const key = hexToBytes('7f7f63d6bfbc2a5bd80c1a3c0b09d0b98ac0a2dd1a2a6e2ec3b5fa7c1b1c7a01');
  const secret = new TextEncoder().encode('lab secret');
  const blinded = blindMessage(secret, 7n);
  const C = constructUnblindedSignature(
    { ...signBlinded(blinded.B_, key), id: '00' },
    7n,
    secret,
    pointFromHex(bytesToHex(getPubKeyFromPrivKey(key))),
  );
  assert.ok(signedBy(secret, C.C, key), 'the unblinded proof is signed by the key');
  assert.ok(verifyUnblindedSignature({ id: '00', secret, C: C.C }, key), 'as cashu-ts checks it');
  assert.not.ok(signedBy(new TextEncoder().encode('another secret'), C.C, key));
  assert.not.ok(signedBy(secret, C.C, hexToBytes(`${'11'.repeat(31)}12`)));
});

test(
  'NUT-00 TokenV3: the lab encoder writes the spec ' + 'serialisation byte for byte; padded and unpadded both decode',
  () => {
    const part = section(nut00, '## Serialization of TokenV3');
    const json = jsonBlocks(part)[0] as {
      token: [{ mint: string; proofs: Array<{ amount: number; id: string; secret: string; C: string }> }];
      unit: string;
      memo: string;
    };
    const serialized = /```\n(cashuA\S+)\n```/.exec(part)![1]!;
    const proofs = json.token[0].proofs.map((p) => ({ ...p, amount: Amount.from(p.amount) }));
    assert.is(encodeToken(json.token[0].mint, json.unit, proofs, 3, json.memo), serialized);

    const decoding = section(nut00, '## Deserialization of TokenV3');
    const valid = all(decoding, /^(cashuA\S+)$/gm).map((m) => m[1]!);
    assert.is(valid.length, 3);
    for (const token of valid) {
      const t = getDecodedToken(token, []);
      assert.is(t.mint, 'https://8333.space:3338');
      assert.equal(
        t.proofs.map((p) => p.amount.toNumber()),
        [2, 8],
      );
    }
    const malformed = all(decoding, /^# (?:Incorrect prefix|No prefix).*\n(\S+)$/gm).map((m) => m[1]!);
    assert.is(malformed.length, 2);
    for (const bad of malformed) {
      assert.throws(() => getDecodedToken(bad, []), undefined, bad.slice(0, 10));
    }
  },
);

test('NUT-00 TokenV4: both spec tokens decode to their fields, and what cashu-ts encodes decodes to the same', () => {
  const part = section(nut00, '## Serialization of TokenV4');
  const tokens = all(part, /```\n(cashuB\S+)\n```/g).map((m) => m[1]!);
  assert.is(tokens.length, 2);
  const single = getDecodedToken(tokens[0]!, []);
  assert.equal([single.mint, single.unit, single.memo], ['http://localhost:3338', 'sat', 'Thank you']);
  assert.equal(
    single.proofs.map((p) => [p.id, p.amount.toNumber(), p.secret, p.C]),
    [
      [
        '00ad268c4d1f5826',
        1,
        '9a6dbb847bd232ba76db0df197216b29d3b8cc14553cd27827fc1cc942fedb4e',
        '038618543ffb6b8695df4ad4babcde92a34a96bdcd97dcee0d7ccf98d472126792',
      ],
    ],
  );
  const multi = getDecodedToken(tokens[1]!, []);
  assert.equal(
    multi.proofs.map((p) => [p.id, p.amount.toNumber()]),
    [
      ['00ffd48b8f5ecf80', 1],
      ['00ad268c4d1f5826', 2],
      ['00ad268c4d1f5826', 1],
    ],
  );
  // Not byte for byte: CBOR fixes no map order, and cashu-ts writes m, u, t where the spec's examples write t, d, m, u.
  for (const t of [single, multi]) assert.equal(getDecodedToken(getEncodedToken(t), []), t);
});

/** NUT-01's rule for a keyset's keys: each a 33-byte compressed secp256k1 point. */
function validKeys(keys: Record<string, string>): boolean {
  return Object.values(keys).every((k) => {
    if (!/^0[23][0-9a-f]{64}$/.test(k)) return false;
    try {
      pointFromHex(k);
      return true;
    } catch {
      return false;
    }
  });
}

test(
  'NUT-01 keys: the rule refuses both bad spec keysets, accepts both good ones, and every key the lab mint ' +
    'serves passes it',
  async () => {
    const sets = jsonBlocks(nut01) as Array<Record<string, string>>;
    assert.is(sets.length, 4);
    assert.equal(sets.map(validKeys), [false, false, true, true]);
    assert.is(sets[3]!['9223372036854775808']?.length, 66, 'the 2^63 key is read (no 64-bit overflow in the parser)');
    const mint = await startCashuMint();
    try {
      const { keysets } = (await jsonExchange(`${mint.url}/v1/keys`)).json as {
        keysets: Array<{ keys: Record<string, string> }>;
      };
      assert.ok(keysets.length > 0 && keysets.every((k) => validKeys(k.keys)));
    } finally {
      await mint.stop();
    }
  },
);

test('NUT-02 keyset ids: v1 and v2 vectors derive exactly as the lab mint derives its own ids', () => {
  const v1 = all(section(nut02, '## Version 1'), /Keyset id: `(\w+)`\n\n```json\n([\s\S]*?)```/g);
  assert.is(v1.length, 2);
  for (const [, id, keys] of v1) assert.is(deriveKeysetId(JSON.parse(keys!), { versionByte: 0 }), id);
  const v2Keyset = new RegExp(
    /- Keyset id: `(\w+)`\n- Unit: `(\w+)`\n- Input fee ppk: `(\d+)`\n/.source +
      /(?:- Final expiry: `(\d+)`\n)?[\s\S]*?```json\n([\s\S]*?)```/.source,
    'g',
  );
  const v2 = all(section(nut02, '## Version 2'), v2Keyset);
  assert.is(v2.length, 3);
  for (const [, id, unit, fee, expiry, keys] of v2) {
    assert.is(
      deriveKeysetId(JSON.parse(keys!), {
        versionByte: 1,
        unit: unit!,
        input_fee_ppk: Number(fee),
        ...(expiry !== undefined && { expiry: Number(expiry) }),
      }),
      id,
    );
  }
});

function field(text: string, name: string): string {
  const m = new RegExp(`${name}: +"?(\\w+)"?`).exec(text);
  assert.ok(m, `no ${name}`);
  return m[1]!;
}

test('NUT-12 hash_e and the deterministic nonce: createDLEQProof reproduces e and s exactly', () => {
  const he = section(nut12, '## `hash_e` function');
  const points = ['R1', 'R2', 'K', 'C_'].map((n) => pointFromHex(field(he, n)));
  assert.is(bytesToHex(hash_e(points)), field(he.slice(he.indexOf('hash(')), 'hash\\(R1, R2, K, C_\\)'));

  const nonce = section(nut12, '## Deterministic nonce derivation');
  const a = hexToBytes(field(nonce, 'a'));
  const B_ = pointFromHex(field(nonce, 'B_'));
  assert.is(hex(createBlindSignature(B_, a, '00').C_), field(nonce, 'C_'));
  const dleq = createDLEQProof(B_, a);
  assert.is(bytesToHex(dleq.e), field(nonce, 'e'));
  assert.is(bytesToHex(dleq.s), field(nonce, 's'));
  assert.ok(verifyDLEQProof(dleq, B_, pointFromHex(field(nonce, 'C_')), pointFromHex(field(nonce, 'A'))));
});

test('NUT-12 DLEQ on a BlindSignature and on a Proof: the spec proofs verify, altered ones do not', () => {
  const onSig = section(nut12, '## DLEQ verification on `BlindSignature`');
  const sig = jsonBlocks(onSig)[0] as { C_: string; dleq: { e: string; s: string } };
  const A = pointFromHex(field(onSig, 'A'));
  const B_ = pointFromHex(field(onSig, 'B_'));
  const dleq = { e: hexToBytes(sig.dleq.e), s: hexToBytes(sig.dleq.s) };
  assert.ok(verifyDLEQProof(dleq, B_, pointFromHex(sig.C_), A));
  assert.not.ok(verifyDLEQProof({ ...dleq, s: hexToBytes(`1${sig.dleq.s.slice(1)}`) }, B_, pointFromHex(sig.C_), A));

  const onProof = section(nut12, '## DLEQ verification on `Proof`');
  const p = jsonBlocks(onProof)[0] as {
    amount: number;
    id: string;
    secret: string;
    C: string;
    dleq: { e: string; s: string; r: string };
  };
  const Ahex = field(onProof, 'A');
  const reblind = { e: hexToBytes(p.dleq.e), s: hexToBytes(p.dleq.s), r: BigInt(`0x${p.dleq.r}`) };
  assert.ok(
    verifyDLEQProof_reblind(new TextEncoder().encode(p.secret), reblind, pointFromHex(p.C), pointFromHex(Ahex)),
  );
  const keyset = { id: p.id, keys: { [String(p.amount)]: Ahex } };
  assert.ok(hasValidDleq({ ...p, amount: Amount.from(p.amount) }, keyset));
  assert.not.ok(hasValidDleq({ ...p, amount: Amount.from(p.amount), secret: p.secret.replace(/^./, '0') }, keyset));
  // The lab's own check (cashu-mint.test.ts's), the same verdicts: the spec's proof, its secret, r, e or s altered.
  assert.ok(dleqHolds(p, Ahex));
  const altered = (hex: string): string => `${hex[0] === '1' ? '2' : '1'}${hex.slice(1)}`;
  assert.not.ok(dleqHolds({ ...p, secret: p.secret.replace(/^./, '0') }, Ahex));
  for (const field of ['r', 'e', 's'] as const)
    assert.not.ok(dleqHolds({ ...p, dleq: { ...p.dleq, [field]: altered(p.dleq[field]) } }, Ahex), field);
  assert.not.ok(dleqHolds({ ...p, dleq: { e: p.dleq.e, s: p.dleq.s } }, Ahex), 'no r: nothing to check against');
});

/** BIP-39 seed: PBKDF2-HMAC-SHA512 of the NFKD mnemonic, salt "mnemonic", 2048 rounds. */
function mnemonicSeed(mnemonic: string): Uint8Array {
  return pbkdf2Sync(mnemonic.normalize('NFKD'), 'mnemonic', 2048, 64, 'sha512');
}

test('NUT-13 deterministic secrets and blinding factors: v1 (BIP-32 path) and v2 (HMAC) for counters 0-4', () => {
  const [idInt, v1Mnemonic, v1Secrets, v1Rs] = jsonBlocks(section(nut13, '## Version 1: keyset ID')).concat(
    jsonBlocks(section(nut13, '## Version 1: Secret derivation')),
  ) as Array<Record<string, string | number>>;
  assert.is(getKeysetIdInt(String(idInt!.keyset_id)), BigInt(idInt!.keyest_id_int!));
  const v2Part = section(nut13, '## Version 2: Secret derivation');
  const [v2Mnemonic, v2Secrets, v2Rs] = jsonBlocks(v2Part) as Array<Record<string, string>>;
  const cases = [
    { keysetId: String(idInt!.keyset_id), mnemonic: v1Mnemonic!, secrets: v1Secrets!, rs: v1Rs! },
    { keysetId: /keyset ID `(\w+)`/.exec(v2Part)![1]!, mnemonic: v2Mnemonic!, secrets: v2Secrets!, rs: v2Rs! },
  ];
  for (const c of cases) {
    const seed = mnemonicSeed(String(c.mnemonic.mnemonic));
    for (let i = 0; i < 5; i++) {
      const d = deriveSecretAndBlindingFactor(seed, c.keysetId, i);
      assert.is(bytesToHex(d.secret), c.secrets[`secret_${i}`], `${c.keysetId} secret ${i}`);
      assert.is(bytesToHex(d.blindingFactor), c.rs[`r_${i}`], `${c.keysetId} r ${i}`);
    }
  }
});

test('NUT-20 signature on mint quote: the spec request verifies at the lab mint; sluice builds the same', () => {
  const request = jsonBlocks(nut20).find((b) => (b as { signature?: unknown }).signature !== undefined) as {
    quote: string;
    outputs: Array<{ amount: number; B_: string }>;
    signature: string;
  };
  const msgHex = /msg_to_sign = ([0-9a-f]+)/.exec(nut20)![1]!;
  const digestHex = /sha256\(msg_to_sign\) = ([0-9a-f]+)/.exec(nut20)![1]!;
  const pubkey = /`pubkey` in the `PostMintQuoteBolt11Response` is `([0-9a-f]{66})`/.exec(nut20)![1]!;
  // The lab mint's message and sluice's, each written from the spec apart from the other.
  assert.is(bytesToHex(nut20Message(request.quote, request.outputs, 'v1')), msgHex);
  assert.is(bytesToHex(sha256(nut20Message(request.quote, request.outputs, 'v1'))), digestHex);
  assert.is(quoteSigMessage(request.quote, request.outputs).toString('hex'), msgHex);
  checkQuoteSignature(pubkey, request.quote, request.outputs, request.signature, ['v1']);
  // Refused: a signature altered, the outputs in another order, an amount changed, another key's, none at all.
  const refused = (f: () => void): number => {
    try {
      f();
    } catch (err) {
      if (err instanceof MintError) return err.code;
      throw err;
    }
    return 0;
  };
  const flipped = (request.signature[0] === '0' ? '1' : '0') + request.signature.slice(1);
  const reversed = [...request.outputs].reverse();
  const more = [{ ...request.outputs[0]!, amount: 2 }, request.outputs[1]!];
  const other = '02' + 'c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5';
  assert.is(
    refused(() => checkQuoteSignature(pubkey, request.quote, request.outputs, flipped, ['v1'])),
    20008,
  );
  assert.is(
    refused(() => checkQuoteSignature(pubkey, request.quote, reversed, request.signature, ['v1'])),
    20008,
  );
  assert.is(
    refused(() => checkQuoteSignature(pubkey, request.quote, more, request.signature, ['v1'])),
    20008,
  );
  assert.is(
    refused(() => checkQuoteSignature(other, request.quote, request.outputs, request.signature, ['v1'])),
    20008,
  );
  assert.is(
    refused(() => checkQuoteSignature(pubkey, request.quote, request.outputs, undefined, ['v1'])),
    20008,
  );
  // A v1 signature is not a legacy one (an older mint refuses it, and sluice then signs the legacy message).
  assert.is(
    refused(() => checkQuoteSignature(pubkey, request.quote, request.outputs, request.signature, ['legacy'])),
    20008,
  );
  // sluice's signatures (secret key 0x01), each format, verify at the lab mint; the legacy one as cashu-ts reads it
  // too.
  const one = '00'.repeat(31) + '01';
  checkQuoteSignature(pubkey, request.quote, request.outputs, signQuote(one, request.quote, request.outputs), ['v1']);
  const legacy = signQuote(one, request.quote, request.outputs, 'legacy');
  checkQuoteSignature(pubkey, request.quote, request.outputs, legacy, ['legacy']);
  const blinded = request.outputs.map((o) => ({ ...o, id: '009a1f293253e41e' }));
  assert.ok(verifyMintQuoteSignature(pubkey, request.quote, blinded as never, legacy));
  // And cashu-ts's legacy signature verifies at the lab mint's legacy check.
  checkQuoteSignature(pubkey, request.quote, request.outputs, signMintQuote(one, request.quote, blinded as never), [
    'legacy',
  ]);
});

test.run();
