// tier: fast
/**
 * escrow.json (escrow/ledger.ts) on storage/json-table: the table suite through the ledger's own methods, and the file
 * the code of 6ffb9b9 wrote (before the shared table) opens after the upgrade.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Hex } from 'viem';
import { EscrowLedger } from '../../src/escrow/index.ts';
import { jsonTableSuite, withOldFile } from '../storage/json-table-suite.ts';
import { tempDirs } from '../helpers/temp.ts';

const id = (n: number): Hex => `0x${n.toString(16).padStart(64, '0')}`;

jsonTableSuite<EscrowLedger>('escrow.json (escrow ledger)', {
  file: 'escrow.json',
  open: (dir, atStart) => EscrowLedger.open(dir, { atStart: atStart === true }),
  put: (ledger, n) =>
    ledger.record({
      sessionId: id(n),
      mac: '02:00:00:00:00:01',
      buyer: `0x${'a'.repeat(40)}`,
      maxUnits: BigInt(n) * 10n ** 20n,
      network: 'eip155:84532',
    }),
  get: (ledger, n) => ledger.get(id(n)),
  delete: (ledger, n) => ledger.forget(id(n)),
  damaged: { code: 'ERR_ESCROW_LEDGER' },
});

const tempDir = tempDirs('sluice-escrow-old-', test.after);

test('an escrow.json written by the code of 6ffb9b9 opens after the upgrade', async () => {
  const dir = withOldFile(
    tempDir(),
    new URL('../storage/fixtures/6ffb9b9/tables/escrow.json', import.meta.url).pathname,
    'escrow.json',
  );
  const ledger = await EscrowLedger.open(dir);
  const open = ledger.get(`0x${'ab'.repeat(32)}`)!;
  assert.is(open.maxUnits, 1000n);
  assert.is(open.pending?.validBefore, '1900000000');
  assert.is(open.chainId, 84532);
  const closed = ledger.get(`0x${'cd'.repeat(32)}`)!;
  assert.equal([closed.consumedUnits, closed.endedAt, closed.closed?.units], [1200n, 1_750_000_005_000, '1200']);
  assert.equal(
    ledger.pendingGrants().map((e) => e.sessionId),
    [`0x${'ab'.repeat(32)}`],
  );
});

test.run();
