// tier: fast
// The escrow ledger (<state_dir>/escrow.json): survives a reopen, and keeps only the most recent KEEP_CLOSED closed
// sessions while every open one stays; one damaged entry fails the whole file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from 'viem';
import { EscrowLedger, KEEP_CLOSED } from '../../src/escrow/ledger.ts';

const id = (n: number): Hex => `0x${n.toString(16).padStart(64, '0')}`;
const BUYER = `0x${'a'.repeat(40)}` as const;

test(
  'closed sessions beyond KEEP_CLOSED are dropped oldest ' + 'first; open ones and the state survive a reopen',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'));
    try {
      const ledger = await EscrowLedger.open(dir);
      const n = KEEP_CLOSED + 5;
      const ids = Array.from({ length: n + 2 }, (_, i) => i + 1);
      // Each step's calls are made in order, at once, as a burst of purchases and closes makes them: each change is
      // applied when called (the oldest closed dropped by the close that passes KEEP_CLOSED) and the table's writes
      // coalesce (storage/json-table.ts), a few whole-file writes where one per call was 785 of up to 263 entries.
      await Promise.all(
        ids.map((i) => ledger.record({ sessionId: id(i), mac: '02:00:00:00:00:01', buyer: BUYER, maxUnits: 10n })),
      );
      const closing = ids.slice(0, n);
      assert.equal(
        await Promise.all(closing.map((i) => ledger.ended(id(i), i))),
        closing.map(() => true),
      );
      await Promise.all(
        closing.map((i) => ledger.closed(id(i), { transaction: '0x1', sellerAmount: String(i), buyerRefund: '0' })),
      );
      assert.is(ledger.size, KEEP_CLOSED + 2);
      assert.is(ledger.get(id(5)), undefined, 'oldest closed dropped');
      assert.is(ledger.get(id(6))?.closed?.sellerAmount, '6');
      assert.ok(ledger.get(id(n + 1)) && !ledger.get(id(n + 1))!.closed, 'open sessions kept');
      const again = await EscrowLedger.open(dir);
      assert.is(again.size, KEEP_CLOSED + 2);
      assert.is(again.get(id(n))?.closed?.sellerAmount, String(n));
      assert.is(again.dueToClose(Number.MAX_SAFE_INTEGER, 0).length, 0, 'nothing closed twice');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'one damaged entry among good ones (no buyer; maxUnits not a number): ERR_ESCROW_LEDGER, never read as the ' +
    'others alone; the file untouched',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'));
    try {
      const ledger = await EscrowLedger.open(dir);
      await ledger.record({ sessionId: id(1), mac: '02:00:00:00:00:01', buyer: BUYER, maxUnits: 10n });
      await ledger.record({ sessionId: id(2), mac: '02:00:00:00:00:02', buyer: BUYER, maxUnits: 10n });
      const path = join(dir, 'escrow.json');
      const good = JSON.parse(readFileSync(path, 'utf8')) as Array<Record<string, unknown>>;
      for (const bad of [
        { ...good[1], buyer: undefined },
        { ...good[1], maxUnits: 'ten' },
      ]) {
        const text = JSON.stringify([good[0], bad]);
        writeFileSync(path, text);
        try {
          await EscrowLedger.open(dir);
          assert.unreachable('opened');
        } catch (err) {
          assert.is((err as { code?: string }).code, 'ERR_ESCROW_LEDGER', String(err));
        }
        assert.is(readFileSync(path, 'utf8'), text);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
