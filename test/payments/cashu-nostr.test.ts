// tier: fast
/**
 * src/payments/cashu/nostr/: BIP-340 Schnorr against BIP-340's own test vectors (test/fixtures/bip340-test-vectors.csv,
 * copied from bitcoin/bips with its commit), NIP-01 ids and signatures against events signed elsewhere (fiatjaf/nak's
 * examples, signed by go-nostr/btcec), and the router's key: made once, 0600, the same after a reopen, a damaged file
 * refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { schnorr } from '@noble/curves/secp256k1.js';
import {
  eventId,
  publicKeyOf,
  serializeEvent,
  signEvent,
  verifyEvent,
  type NostrEvent,
} from '../../src/payments/cashu/nostr/event.ts';
import { NOSTR_KEY_FILE, openRouterKey } from '../../src/payments/cashu/nostr/key.ts';
import { isSluiceError } from '../../src/errors.ts';
import { bip340Verify } from '../helpers/bip340-verify.ts';
import { loadCashuLib } from '../../src/cashu/loader.ts';

// cashu-ts and secp256k1 loaded as the daemon loads them before any of sluice's Cashu code runs: without it, that code
// would reach them through the loader's synchronous fallback, a second copy beside this file's, which compiles anew
// and builds its own base-point tables (~0.1-0.2 s of CPU a file).
await loadCashuLib();

interface Vector {
  index: string;
  secretKey: string;
  publicKey: string;
  auxRand: string;
  message: string;
  signature: string;
  valid: boolean;
  comment: string;
}

function vectors(): Vector[] {
  const text = readFileSync(new URL('../fixtures/bip340-test-vectors.csv', import.meta.url), 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l !== '' && !l.startsWith('#'));
  assert.is(lines[0], 'index,secret key,public key,aux_rand,message,signature,verification result,comment');
  return lines.slice(1).map((line) => {
    const [index, secretKey, publicKey, auxRand, message, signature, result, ...comment] = line.split(',');
    return {
      index: index!,
      secretKey: secretKey!,
      publicKey: publicKey!,
      auxRand: auxRand!,
      message: message!,
      signature: signature!,
      valid: result === 'TRUE',
      comment: comment.join(','),
    };
  });
}

const bytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();

test('BIP-340 vectors: every signing vector signs to the listed signature and public key', () => {
  const signing = vectors().filter((v) => v.secretKey !== '');
  assert.is(signing.length, 8, 'rows 0-3 and 15-18 carry a secret key');
  for (const v of signing) {
    assert.is(hex(schnorr.getPublicKey(bytes(v.secretKey))), v.publicKey, `vector ${v.index} public key`);
    assert.is(publicKeyOf(bytes(v.secretKey)), v.publicKey.toLowerCase(), `vector ${v.index} publicKeyOf`);
    assert.is(
      hex(schnorr.sign(bytes(v.message), bytes(v.secretKey), bytes(v.auxRand))),
      v.signature,
      `vector ${v.index} signature`,
    );
  }
});

test(
  'BIP-340 vectors: every verification vector verifies to its listed result (invalid keys and signatures ' +
    'refused, not thrown)',
  () => {
    const all = vectors();
    assert.is(all.length, 19);
    for (const v of all) {
      let ok: boolean;
      try {
        ok = schnorr.verify(bytes(v.signature), bytes(v.message), bytes(v.publicKey));
      } catch {
        ok = false;
      }
      assert.is(ok, v.valid, `vector ${v.index} (${v.comment || 'valid'})`);
    }
  },
);

test(
  "the tests' own BIP-340 verifier (test/helpers/bip340-verify.ts, no noble) agrees with every vector, and with " +
    'signEvent',
  () => {
    for (const v of vectors())
      assert.is(
        bip340Verify(v.publicKey, v.message, v.signature),
        v.valid,
        `vector ${v.index} (${v.comment || 'valid'})`,
      );
    const e = signEvent(
      { kind: 1, created_at: 1, tags: [], content: 'x' },
      bytes('c90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b14e5c9'),
    );
    assert.ok(bip340Verify(e.pubkey, e.id, e.sig));
    assert.not.ok(bip340Verify(e.pubkey, e.id, `${e.sig.slice(0, 127)}${e.sig.endsWith('0') ? '1' : '0'}`));
  },
);

/**
 * Signed by fiatjaf/nak (go-nostr, btcec), example_test.go @ 895d43f716d060657d708a0466a2479537e13f25: its documented
 * outputs.
 */
const NAK_BASIC: NostrEvent = {
  id: '36d88cf5fcc449f2390a424907023eda7a74278120eebab8d02797cd92e7e29c',
  pubkey: '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798',
  created_at: 1699485669,
  kind: 1,
  tags: [],
  content: 'hello from the nostr army knife',
  sig:
    '68e71a192e8abcf8582a222434ac823ecc50607450ebe8cc4c145eb047794cc3' +
    '82dc3f888ce879d2f404f5ba6085a47601360a0fa2dd4b50d317bd0c6197c2c2',
};
const NAK_COMPLEX: NostrEvent = {
  id: 'aec4de6d051a7c2b6ca2d087903d42051a31e07fb742f1240970084822de10a6',
  pubkey: '2fa2104d6b38d11b0230010559879124e42ab8dfeff5ff29dc9cdadd4ecacc3f',
  created_at: 1699485669,
  kind: 11,
  tags: [
    ['t', 'spam'],
    ['r', 'https://abc.def', 'nothing'],
    ['e', '36d88cf5fcc449f2390a424907023eda7a74278120eebab8d02797cd92e7e29c'],
  ],
  content: 'skjdbaskd',
  sig:
    '1165ac7a27d774d351ef19c8e918fb22f4005fcba193976c3d7edba6ef87ead7' +
    'f14467f376a9e199f8371835368d86a8506f591e382528d00287fb168a7b8f38',
};

test(
  'NIP-01: the id of events signed by another implementation is the hash of our serialisation, and their ' +
    'signatures verify',
  () => {
    for (const e of [NAK_BASIC, NAK_COMPLEX]) {
      assert.is(eventId(e), e.id);
      assert.ok(verifyEvent(e));
    }
    assert.is(
      serializeEvent(NAK_BASIC),
      '[0,"79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",1699485669,1,[],"hello from the ' +
        'nostr army knife"]',
    );
    // nak's key 1 is the generator: the public key of secret key 1.
    assert.is(publicKeyOf(bytes(`${'0'.repeat(63)}1`)), NAK_BASIC.pubkey);
  },
);

test('NIP-01: a changed field, id or signature, or a malformed event, does not verify (and never throws)', () => {
  assert.not.ok(verifyEvent({ ...NAK_BASIC, content: 'hello from the nostr army knife!' }));
  assert.not.ok(verifyEvent({ ...NAK_BASIC, id: `666${NAK_BASIC.id.slice(3)}` }));
  assert.not.ok(verifyEvent({ ...NAK_BASIC, sig: `666${NAK_BASIC.sig.slice(3)}` }));
  assert.not.ok(verifyEvent({ ...NAK_BASIC, pubkey: NAK_COMPLEX.pubkey }));
  assert.not.ok(verifyEvent({ ...NAK_BASIC, tags: [['t', 1]] }));
  assert.not.ok(verifyEvent({ ...NAK_BASIC, id: NAK_BASIC.id.toUpperCase() }));
  for (const v of [null, 'x', 1, {}, { ...NAK_BASIC, created_at: '1699485669' }]) assert.not.ok(verifyEvent(v));
});

test(
  "signEvent: a signed event verifies, its id is NIP-01's, its tags stay strings; escaping of quotes and " +
    'newlines round-trips',
  () => {
    const sk = bytes('b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfef');
    const e = signEvent(
      {
        kind: 10021,
        created_at: 1764000000,
        tags: [
          ['metric', 'milliseconds'],
          ['step_size', '60000'],
        ],
        content: 'line\n"quoted" \\ tab\t',
      },
      sk,
    );
    assert.is(e.pubkey, 'dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659');
    assert.is(e.id, eventId(e));
    assert.ok(verifyEvent(e));
    assert.ok(verifyEvent(JSON.parse(JSON.stringify(e))));
  },
);

test(
  'the router key: made at the first open (0600, 64 hex), the same at the next; a damaged file is refused, not ' +
    'replaced',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-nostr-'));
    try {
      const state = join(dir, 'state');
      const first = await openRouterKey(state);
      assert.ok(first.created);
      const path = join(state, NOSTR_KEY_FILE);
      assert.is(statSync(path).mode & 0o777, 0o600);
      assert.match(readFileSync(path, 'utf8'), /^[0-9a-f]{64}\n$/);
      const again = await openRouterKey(state);
      assert.not.ok(again.created);
      assert.is(again.pubkey, first.pubkey);
      assert.equal(again.secretKey, first.secretKey);

      for (const bad of ['not a key\n', `${'f'.repeat(64)}\n`, `${'0'.repeat(64)}\n`]) {
        writeFileSync(path, bad);
        try {
          await openRouterKey(state);
          assert.unreachable('a damaged key file must be refused');
        } catch (err) {
          assert.ok(isSluiceError(err, 'ERR_NOSTR_KEY'), String(err));
        }
        assert.is(readFileSync(path, 'utf8'), bad, 'left as found');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'sysupgrade keeps the key and the ecash: the package ships /lib/upgrade/keep.d/sluice naming them under the ' +
    'default state_dir',
  () => {
    const root = new URL('../../', import.meta.url);
    const keep = readFileSync(new URL('files/lib/upgrade/keep.d/sluice', root), 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.ok(keep.includes(`/etc/sluice/${NOSTR_KEY_FILE}`), keep.join(' '));
    assert.ok(keep.includes('/etc/sluice/cashu/'), 'and the ecash the router holds');
    assert.ok(
      keep.includes('/etc/sluice/vouchers.log') && keep.includes('/etc/sluice/voucher.key'),
      'and the printed-voucher book',
    );
    assert.match(readFileSync(new URL('files/etc/config/sluice', root), 'utf8'), "option state_dir '/etc/sluice'");
    const makefile = readFileSync(new URL('Makefile', root), 'utf8');
    assert.match(makefile, '$(INSTALL_DATA) ./files/lib/upgrade/keep.d/sluice $(1)/lib/upgrade/keep.d/sluice');
  },
);

test.run();
