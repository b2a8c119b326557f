// tier: fast
/**
 * The Cashu ledger never holds less than the session journal says without an error: a ledger once sealed carries the
 * mark of it (its first record), so a ledger whose seal is gone is refused however it was cut or put back; and at
 * start the Cashu payments the journal holds are checked against the ledger's records, so a ledger deleted with its
 * seal, or the custody directory and the seal put back from an earlier copy with the journal kept, is refused
 * (ERR_CASHU_STORE_DAMAGED, counted) until the operator decides (`cashu-ledger.accept-loss`). Real journal, real
 * ledger files; the sales go through both as a Cashu purchase does (intent, landed, the session, applied).
 */
import { cpSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CashuStore, LEDGER_ACCEPT, LEDGER_SEAL } from '../../src/payments/cashu/store.ts';
import type { StoredProof } from '../../src/cashu/token.ts';
import { isSluiceError } from '../../src/errors.ts';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import { damagedTables } from '../../src/storage/index.ts';
import { encodeRecord } from '../../src/storage/record-log.ts';
import { tempDirs } from '../helpers/temp.ts';

const MINT = 'https://mint.example';
const LEDGER = join('cashu', 'ledger.log');
const tempDir = tempDirs('sluice-ledger-journal-', test.after);

const proof = (n: number, amount: number): StoredProof => ({
  id: '00ad268c4d1f5826',
  amount,
  secret: `${n}`.padStart(64, 'a'),
  C: `02${`${n}`.padStart(64, 'c')}`,
});

const refOf = (n: number): string => `${n}`.padStart(64, 'f');

/** Sells sales `from`…`to` (21 sat each) the way the cashu method does, ledger and journal both; closes both. */
async function sell(dir: string, from: number, to: number): Promise<void> {
  const sessions = await SessionManager.open({ store: new JournalStore({ dir }) });
  const store = await CashuStore.open(dir, { journal: sessions.paymentReferences('cashu') });
  for (let n = from; n <= to; n++) {
    const ref = refOf(n);
    const mac = `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
    await store.beginSwap({
      ref,
      mint: MINT,
      mac,
      at: Date.now(),
      inputs: [proof(1000 + n, 21)],
      outputs: [],
      quote: { plan: 'time', metric: 'seconds', steps: '1', allotment: '60', price: '21', stepSize: '60' },
    });
    await store.landSwap(ref, [proof(n, 16), proof(n + 100, 4), proof(n + 200, 1)]);
    await sessions.activate({
      mac,
      metric: 'seconds',
      allotment: 60n,
      payment: { method: 'cashu', reference: ref, amount: 21n, asset: 'sat', at: Date.now() },
    });
    await store.markApplied(ref);
  }
  await store.close();
  await sessions.close();
}

/** Opens the ledger as a start does, against the journal in `dir`: the store, or the refusal's message. */
async function start(dir: string): Promise<CashuStore | string> {
  const sessions = await SessionManager.open({ store: new JournalStore({ dir }) });
  try {
    return await CashuStore.open(dir, { journal: sessions.paymentReferences('cashu') });
  } catch (err) {
    assert.ok(isSluiceError(err, 'ERR_CASHU_STORE_DAMAGED'), String(err));
    assert.is(err.details?.['damaged'], true);
    return err.message;
  } finally {
    await sessions.close();
  }
}

async function refused(dir: string, why: RegExp, what: string): Promise<void> {
  const counted = damagedTables()['ledger.log'] ?? 0;
  const got = await start(dir);
  if (typeof got !== 'string') {
    const total = got.total();
    await got.close();
    assert.unreachable(`${what}: opened holding ${total} sat, refused expected`);
  }
  assert.match(got as string, why, what);
  assert.is(damagedTables()['ledger.log'], counted + 1, `${what}: counted`);
}

test('a whole ledger and its journal open together, holding every sale', async () => {
  const dir = tempDir();
  await sell(dir, 1, 10);
  const store = await start(dir);
  assert.ok(typeof store !== 'string', String(store));
  assert.is((store as CashuStore).total(), 210n);
  await (store as CashuStore).close();
});

test('seal deleted + ledger cut in half: refused (the ledger says it was sealed)', async () => {
  const dir = tempDir();
  await sell(dir, 1, 10);
  rmSync(join(dir, LEDGER_SEAL));
  const bytes = readFileSync(join(dir, LEDGER));
  writeFileSync(join(dir, LEDGER), bytes.subarray(0, bytes.length >> 1));
  await refused(dir, /seal cashu-ledger\.seal is missing, while the ledger says it was sealed/, 'cut in half');
  assert.equal(readFileSync(join(dir, LEDGER)), bytes.subarray(0, bytes.length >> 1), 'left as it was found');
});

test('seal deleted + an older ledger: refused', async () => {
  const dir = tempDir();
  await sell(dir, 1, 4);
  const older = readFileSync(join(dir, LEDGER));
  await sell(dir, 5, 10);
  rmSync(join(dir, LEDGER_SEAL));
  writeFileSync(join(dir, LEDGER), older);
  await refused(dir, /seal .* is missing|holds none of/, 'an older ledger');
});

test('seal deleted + ledger deleted: refused (the journal holds Cashu payments it lacks)', async () => {
  const dir = tempDir();
  await sell(dir, 1, 10);
  rmSync(join(dir, LEDGER_SEAL));
  rmSync(join(dir, 'cashu'), { recursive: true });
  await refused(dir, /holds none of 10 Cashu payment\(s\) the session journal holds/, 'ledger deleted');
});

test('cashu/ and the seal restored from an earlier copy, the journal kept: refused', async () => {
  const dir = tempDir();
  await sell(dir, 1, 4);
  const backup = tempDir();
  cpSync(join(dir, 'cashu'), join(backup, 'cashu'), { recursive: true });
  cpSync(join(dir, LEDGER_SEAL), join(backup, LEDGER_SEAL));
  await sell(dir, 5, 10);
  rmSync(join(dir, 'cashu'), { recursive: true });
  cpSync(join(backup, 'cashu'), join(dir, 'cashu'), { recursive: true });
  cpSync(join(backup, LEDGER_SEAL), join(dir, LEDGER_SEAL));
  await refused(dir, /holds none of 6 Cashu payment\(s\)/, 'an earlier copy restored whole');
});

test("the operator's decision (cashu-ledger.accept-loss): opens as it reads, once; later starts open too", async () => {
  const dir = tempDir();
  await sell(dir, 1, 10);
  rmSync(join(dir, LEDGER_SEAL));
  rmSync(join(dir, 'cashu'), { recursive: true });
  writeFileSync(join(dir, LEDGER_ACCEPT), '');
  const store = await start(dir);
  assert.ok(typeof store !== 'string', String(store));
  assert.is((store as CashuStore).total(), 0n);
  await (store as CashuStore).close();
  assert.not.ok(existsSync(join(dir, LEDGER_ACCEPT)), 'the decision is used once');
  await sell(dir, 11, 12);
  const again = await start(dir);
  assert.ok(typeof again !== 'string', String(again));
  assert.is((again as CashuStore).total(), 42n, 'the sales since');
  await (again as CashuStore).close();
});

test('a ledger from before the mark and the seal opens as it reads, then is marked and sealed', async () => {
  const dir = tempDir();
  await sell(dir, 1, 2);
  // The same records without the mark, and no seal: as an older version left them.
  const records = [
    { t: 'add', mint: MINT, proofs: [proof(1, 16), proof(2, 4)], why: 'old' },
    { t: 'applied', ref: refOf(1) },
    { t: 'applied', ref: refOf(2) },
  ].map((r) => encodeRecord(Buffer.from(JSON.stringify(r))));
  writeFileSync(join(dir, LEDGER), Buffer.concat(records));
  rmSync(join(dir, LEDGER_SEAL));
  const store = await start(dir);
  assert.ok(typeof store !== 'string', String(store));
  assert.is((store as CashuStore).total(), 20n);
  await (store as CashuStore).close();
  assert.ok(readFileSync(join(dir, LEDGER_SEAL), 'utf8').includes('"states"'), 'sealed');
  rmSync(join(dir, LEDGER_SEAL));
  await refused(dir, /seal .* is missing/, 'marked since: its seal deleted');
});

test.run();
