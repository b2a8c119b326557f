// tier: fast
/**
 * pcsync-nonces.json (http/pcsync-nonces.ts) on storage/json-table through nonce-file.ts: the table suite through the
 * ledger's own claim, and the file the code of 6ffb9b9 wrote (before the shared table) opens after the upgrade. Its
 * damage policy is the nonce files' (it runs on, refusing every call the damaged file may have held), counted and kept
 * aside like every table's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NonceLedger } from '../../src/http/pcsync-nonces.ts';
import { isSluiceError } from '../../src/errors.ts';
import { jsonTableSuite, withOldFile } from '../storage/json-table-suite.ts';
import { tempDirs } from '../helpers/temp.ts';

const T = Date.parse('2026-05-01T12:00:00Z');
const WINDOW = 300_000;

/**
 * Whether the ledger knows nonce-n, by the only way it tells: claiming it again ('seen' = refused as a replay). A
 * nonce it does not know is claimed by the probe: asked last in each test, or of a ledger about to be dropped.
 */
async function probe(ledger: NonceLedger, n: number): Promise<'seen' | undefined> {
  try {
    await ledger.claim(`nonce-${n}`, T + n, T + 100);
    return undefined;
  } catch (err) {
    if (isSluiceError(err, 'ERR_PCSYNC_REPLAYED')) return 'seen';
    throw err;
  }
}

jsonTableSuite<NonceLedger>('pcsync-nonces.json (PC-sync nonces)', {
  file: 'pcsync-nonces.json',
  open: (dir) => NonceLedger.open(dir, WINDOW, T),
  put: (ledger, n) => ledger.claim(`nonce-${n}`, T + n, T + n),
  get: probe,
  damaged: {
    async refuses(ledger, n) {
      await ledger.claim(`nonce-${n}`, T + n, T + 100).then(
        () => assert.unreachable('a nonce the damaged file held was claimed again'),
        (err: unknown) => assert.ok(isSluiceError(err, 'ERR_PCSYNC_NONCES_LOST'), String(err)),
      );
      assert.is(ledger.stats(T + 100).nonces, 'damaged');
    },
  },
});

test(
  'a pcsync-nonces.json written by the code of 6ffb9b9 ' + 'opens after the upgrade: its nonces are replays',
  async () => {
    const dir = withOldFile(
      tempDirs('sluice-pcsync-old-', test.after)(),
      new URL('../storage/fixtures/6ffb9b9/tables/pcsync-nonces.json', import.meta.url).pathname,
      'pcsync-nonces.json',
    );
    const now = 1_750_000_012_500;
    const ledger = await NonceLedger.open(dir, WINDOW, now);
    for (const nonce of ['nonce-one', 'nonce-two']) {
      await ledger.claim(nonce, now, now).then(
        () => assert.unreachable(`${nonce} claimed twice`),
        (err: unknown) => assert.ok(isSluiceError(err, 'ERR_PCSYNC_REPLAYED')),
      );
    }
    assert.is(ledger.stats(now).nonces, 'ok');
  },
);

test.run();
