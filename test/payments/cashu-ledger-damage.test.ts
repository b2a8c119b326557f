// tier: fast
/**
 * The Cashu ledger (bearer money) and the book of ecash on its way out against the shared damage suite, and the crash
 * leftovers it must still read: a torn last record past the seal, a record whose seal was not written yet, a compaction
 * cut on either side of its rename, and a ledger written before it was sealed; a record that no longer applies when its
 * turn to be written comes, never written; a full flash (root); and a ledger as routers hold it, written by the
 * store's code of 4063c86 (test/storage/fixtures/4063c86/cashu-ledger: a compacted part, then appended records), which
 * opens as it is. The store keeps proofs as opaque records: the proofs here are shaped as a mint's are, and no mint is
 * asked.
 */
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CashuStore, LEDGER_SEAL } from '../../src/payments/cashu/store.ts';
import { OutgoingBook } from '../../src/payments/cashu/outgoing.ts';
import type { StoredProof } from '../../src/cashu/token.ts';
import { isSluiceError } from '../../src/errors.ts';
import { damagedTables, scanRecords } from '../../src/storage/index.ts';
import { encodeSeal, sealOf, type SealState } from '../../src/storage/seal.ts';
import { durableFileSuite } from '../storage/durable-file-suite.ts';
import { onFullFlash } from '../storage/full-flash.ts';
import { testNeeding } from '../helpers/skip.ts';
import { tempDirs } from '../helpers/temp.ts';

const MINT = 'https://mint.example';
const proof = (n: number): StoredProof => ({
  id: '00ad268c4d1f5826',
  amount: 2 ** (n % 8),
  secret: `${n}`.padStart(64, 'a'),
  C: `02${`${n}`.padStart(64, 'c')}`,
});

durableFileSuite<CashuStore>('cashu/ledger.log', {
  kind: 'cashu-ledger',
  file: join('cashu', 'ledger.log'),
  code: 'ERR_CASHU_STORE_DAMAGED',
  open: (dir, atStart) => CashuStore.open(dir, { atStart }),
  close: (s) => s.close(),
  put: (s, n) => s.addProofs(MINT, [proof(n), proof(n + 100)], 'test'),
  holds: (s) => ({ total: String(s.total()), proofs: s.proofsOf(MINT).map((p) => p.secret) }),
});

durableFileSuite<OutgoingBook>('cashu/outgoing.json', {
  kind: 'cashu-outgoing',
  file: join('cashu', 'outgoing.json'),
  code: 'ERR_CASHU_STORE_DAMAGED',
  open: async (dir) => {
    // The first open's: a harm's put-back makes the directory again (a recursive mkdir of one there costs its own).
    if (!existsSync(join(dir, 'cashu'))) mkdirSync(join(dir, 'cashu'), { recursive: true, mode: 0o700 });
    return OutgoingBook.open(dir);
  },
  close: (b) => b.settled(),
  put: (b, n) =>
    b.add({
      kind: 'swap',
      take: `take-${n}`,
      mint: MINT,
      inputTotal: n,
      inputFee: 0,
      at: 1_750_000_000_000 + n,
      outputs: [
        {
          amount: n,
          id: '00ad268c4d1f5826',
          B_: `02${`${n}`.padStart(64, 'b')}`,
          secret: `${n}`.padStart(64, 's'),
          r: `${n}`.padStart(64, 'r'),
        },
      ],
    }),
  holds: (b) => b.open().map((o) => [o.take, o.inputTotal]),
});

const tempDir = tempDirs('sluice-ledger-', test.after);
const LEDGER = join('cashu', 'ledger.log');

/** Adds proofs `from`…`to` (one change each) and stops; the total held. */
async function filled(dir: string, to: number, from = 1): Promise<bigint> {
  const store = await CashuStore.open(dir);
  for (let n = from; n <= to; n++) await store.addProofs(MINT, [proof(n)], 'test');
  const total = store.total();
  await store.close();
  return total;
}

async function refusal(dir: string): Promise<string> {
  return CashuStore.open(dir).then(
    () => assert.unreachable('opened') as never,
    (err: unknown) => {
      assert.ok(isSluiceError(err, 'ERR_CASHU_STORE_DAMAGED'), String(err));
      return err.message;
    },
  );
}

test('cut to half, the ledger is refused (never read as holding less), counted, and no copy is kept', async () => {
  const dir = tempDir();
  assert.ok((await filled(dir, 12)) > 0n);
  const file = join(dir, LEDGER);
  const bytes = readFileSync(file);
  writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
  const before = damagedTables()['ledger.log'] ?? 0;
  assert.match(await refusal(dir), /before the \d+ bytes it was sealed with/);
  assert.is(damagedTables()['ledger.log'], before + 1);
  assert.equal(readFileSync(file), bytes.subarray(0, bytes.length >> 1), 'left as it is');
  assert.equal(readdirSync(join(dir, 'cashu')), ['ledger.log'], 'no copy of bearer money kept aside');
});

test('emptied, deleted, or its custody directory removed after it held ecash: refused, not a new store', async () => {
  for (const spoil of ['empty', 'delete', 'custody'] as const) {
    const dir = tempDir();
    await filled(dir, 3);
    const file = join(dir, LEDGER);
    if (spoil === 'empty') writeFileSync(file, '');
    else if (spoil === 'delete') rmSync(file);
    // The seal is out of the custody directory: it still says what the ledger held.
    else rmSync(join(dir, 'cashu'), { recursive: true });
    assert.match(await refusal(dir), spoil === 'empty' ? /is empty/ : /is missing/, spoil);
  }
});

test('a torn last record past the seal (a crash mid-append) is cut, the rest kept', async () => {
  const dir = tempDir();
  const total = await filled(dir, 3);
  appendFileSync(join(dir, LEDGER), Buffer.from([40, 0, 0, 0, 1, 2, 3]));
  const store = await CashuStore.open(dir);
  assert.is(store.total(), total);
  await store.close();
});

test('a record appended whose seal was not written (a crash between the two) is kept', async () => {
  const dir = tempDir();
  await filled(dir, 2);
  const seal = readFileSync(join(dir, LEDGER_SEAL));
  const total = await filled(dir, 3, 3);
  writeFileSync(join(dir, LEDGER_SEAL), seal);
  const store = await CashuStore.open(dir);
  assert.is(store.total(), total);
  assert.is(store.proofsOf(MINT).length, 3);
  await store.close();
});

test('a compaction cut on either side of its rename opens; an older pre-compaction copy is refused', async () => {
  const dir = tempDir();
  await filled(dir, 3);
  const file = join(dir, LEDGER);
  const old = readFileSync(file);
  // compactAfter 2: the next open's appends rewrite the file whole.
  const store = await CashuStore.open(dir, { compactAfter: 2 });
  await store.addProofs(MINT, [proof(4)], 'test');
  await store.addProofs(MINT, [proof(5)], 'test');
  assert.is(store.proofsOf(MINT).length, 5);
  await store.close();
  const compacted = readFileSync(file);
  assert.ok(scanRecords(compacted, 0).records.length < 5, 'compacted');
  const seal = JSON.parse(readFileSync(join(dir, LEDGER_SEAL), 'utf8')) as { states: SealState[] };
  assert.is(seal.states.length, 1, 'one state once the rename is done');
  writeFileSync(file, old);
  assert.match(await refusal(dir), /sealed/, 'the ledger from before the compaction: refused');
  // The seal as it is between its two-state write and the rename, the old file or the compacted one in place: both
  // open, with what each holds.
  writeFileSync(join(dir, LEDGER_SEAL), encodeSeal([sealOf(old), seal.states[0]!]));
  writeFileSync(file, old);
  let again = await CashuStore.open(dir);
  assert.is(again.proofsOf(MINT).length, 3, 'the rename not done: the old ledger');
  await again.close();
  writeFileSync(join(dir, LEDGER_SEAL), encodeSeal([sealOf(old), seal.states[0]!]));
  writeFileSync(file, compacted);
  again = await CashuStore.open(dir);
  assert.is(again.proofsOf(MINT).length, 5, 'the rename done: the compacted ledger');
  await again.close();
});

test(
  'a record that no longer applies when its turn to be written comes (its intent ended by the append queued before ' +
    'it) is refused unwritten: the ledger opens again, and holds what it said',
  async () => {
    const dir = tempDir();
    const store = await CashuStore.open(dir);
    const output = { amount: 2, id: '00ad268c4d1f5826', B_: `02${'b'.repeat(64)}`, secret: 's'.repeat(64), r: 'f' };
    const quote = { plan: 'time', metric: 'seconds', steps: '1', allotment: '60', price: '2', stepSize: '60' } as const;
    await store.beginSwap({
      ref: 'r1',
      mint: MINT,
      mac: '02:00:00:00:00:01',
      at: 1,
      inputs: [],
      outputs: [output],
      quote,
    });
    // Both asked for before either is written: the landing is checked against the state it is written onto.
    const dropped = store.dropIntent('r1', 'refused');
    const landed = store.landSwap('r1', [proof(1)]).then(
      () => 'landed',
      (err: unknown) => (isSluiceError(err, 'ERR_INTERNAL') ? 'refused' : String(err)),
    );
    await dropped;
    assert.is(await landed, 'refused');
    await store.addProofs(MINT, [proof(2)], 'test');
    const held = store.total();
    await store.close();
    const again = await CashuStore.open(dir);
    assert.is(again.total(), held, 'reopened with what it held');
    assert.is(again.openIntents().length, 0);
    await again.close();
  },
);

test('its seal deleted, a whole ledger is refused: it says it was sealed', async () => {
  const dir = tempDir();
  await filled(dir, 3);
  rmSync(join(dir, LEDGER_SEAL));
  assert.match(await refusal(dir), /is missing, while the ledger says it was sealed/);
});

test('a ledger as routers hold it (its file, its seal, its framing) opens unchanged, and grows in place', async () => {
  const dir = tempDir();
  cpSync(new URL('../storage/fixtures/4063c86/cashu-ledger/', import.meta.url).pathname, dir, { recursive: true });
  const file = join(dir, LEDGER);
  const bytes = readFileSync(file);
  const seal = readFileSync(join(dir, LEDGER_SEAL));
  const A = 'https://mint-a.example';
  const ref = (n: number): string => `${n}`.padStart(64, 'e');
  for (const atStart of [true, false]) {
    const store = await CashuStore.open(dir, { atStart });
    assert.equal(
      [...store.balances()].map(([mint, sat]) => `${mint} ${sat}`),
      [`${A} 28`, 'https://mint-b.example 8'],
    );
    assert.is(store.exposure(), 70n, 'held, taken and incoming');
    assert.equal(
      store.takes().map((t) => [t.mint, t.purpose]),
      [['https://mint-b.example', 'melt']],
    );
    assert.equal(
      store.openIntents().map((i) => [i.intent.ref, i.state]),
      [
        [ref(2), 'open'],
        [ref(5), 'landed'],
      ],
    );
    assert.ok(store.isApplied(ref(1)));
    assert.ok(store.wasClaimed(ref(3)));
    assert.is(store.strandedSince(ref(2)), 1_750_000_500_000);
    await store.close();
    assert.equal(readFileSync(file), bytes, 'the ledger as it was');
    assert.equal(readFileSync(join(dir, LEDGER_SEAL)), seal, 'its seal as it was');
  }
  const store = await CashuStore.open(dir);
  const ino = statSync(file).ino;
  await store.addProofs(A, [proof(77)], 'test');
  await store.close();
  assert.is(statSync(file).ino, ino, 'appended in place');
  assert.equal(readFileSync(file).subarray(0, bytes.length), bytes, 'after the bytes it held');
  const again = await CashuStore.open(dir, { atStart: true });
  assert.is(again.balances().get(A), 28n + 32n);
  await again.close();
});

testNeeding(
  test,
  ['root'],
  'a full flash: the append that falls short is cut back and refused (ERR_CASHU_STORE_WRITE), the ledger goes on ' +
    'after the last whole record, and a restart holds every change told yes',
  async () => {
    await onFullFlash(async (mount, fill, free) => {
      const dir = join(mount, 'state');
      mkdirSync(dir);
      const store = await CashuStore.open(dir);
      const told: string[] = [];
      let refused: unknown = null;
      try {
        await store.addProofs(MINT, [proof(1)], 'test');
        told.push(proof(1).secret);
        fill();
        for (let n = 2; n < 2000 && refused === null; n++) {
          await store.addProofs(MINT, [proof(n), proof(n + 5000)], 'test').then(
            () => told.push(proof(n).secret, proof(n + 5000).secret),
            (err: unknown) => (refused = err),
          );
        }
        assert.ok(isSluiceError(refused, 'ERR_CASHU_STORE_WRITE'), String(refused));
        assert.equal(
          store.proofsOf(MINT).map((p) => p.secret),
          told,
          'the refused change is not made',
        );
        // Cut back: the file is its whole records, as its seal says (a torn record would hide every later one).
        const bytes = readFileSync(join(dir, LEDGER));
        const scan = scanRecords(bytes, 0);
        assert.is(scan.problem, null, 'no torn tail left');
        const sealed = JSON.parse(readFileSync(join(dir, LEDGER_SEAL), 'utf8')) as { states: SealState[] };
        assert.equal(sealed.states, [sealOf(bytes)], 'the seal names the file as it is');
        free();
        await store.addProofs(MINT, [proof(4999)], 'test');
        told.push(proof(4999).secret);
      } finally {
        await store.close();
      }
      const again = await CashuStore.open(dir, { atStart: true });
      assert.equal(
        again.proofsOf(MINT).map((p) => p.secret),
        told,
        'the restart holds what was told yes, no less, no more',
      );
      await again.close();
    });
  },
);

test.run();
