// tier: fast
/**
 * `sales` is the router's sales book: a customer who topped up 50 times is 50 payments in it (a session keeps only
 * KEPT_PAYMENTS), summed to the smallest unit, after compactions (the book is written with the snapshot) and a
 * restart; and it is bounded (35 days, at most SALES_KEPT payments, `held_since` saying from when it is complete).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { salesReply } from '../../src/api/sales.ts';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import { KEPT_PAYMENTS } from '../../src/sessions/model.ts';
import { SALES_KEPT, SALES_WINDOW_MS, SalesBook } from '../../src/sessions/sales-book.ts';
import { tempDirs } from '../helpers/temp.ts';

const tempDir = tempDirs('sluice-sales-', test.after);
const MAC = '02:00:00:00:00:50';

test('50 top-ups: `sales` sums all 50, through compactions and a restart', async () => {
  const dir = tempDir();
  // A compaction every 7 records: the book goes through the snapshot many times.
  const open = (): Promise<SessionManager> =>
    SessionManager.open({ store: new JournalStore({ dir, compactRecords: 7 }) });
  const sessions = await open();
  let sum = 0n;
  for (let n = 1; n <= 51; n++) {
    const amount = BigInt(1000 + n);
    sum += amount;
    await sessions.activate({
      mac: MAC,
      metric: 'seconds',
      allotment: 60n,
      payment: { method: 'exact', reference: `pay-${n}`, amount, asset: 'USDC', at: Date.now() },
    });
  }
  const session = sessions.byMac(MAC)!;
  assert.ok(session.payments.length <= KEPT_PAYMENTS, 'the session itself keeps only a few');
  const want = [{ method: 'exact', asset: 'USDC', amount: sum.toString(), payments: 51 }];
  assert.equal(salesReply(sessions.salesBook, 0, Date.now() + 1).totals, want, 'the sale and 50 top-ups');
  await sessions.close();
  const again = await open();
  assert.equal(salesReply(again.salesBook, 0, Date.now() + 1).totals, want, 'after a restart');
  await again.close();
});

test('bounded: 35 days, at most SALES_KEPT payments; held_since says from when it is complete', () => {
  const book = new SalesBook(0);
  const t0 = 1_750_000_000_000;
  for (let i = 0; i < SALES_KEPT + 10; i++) book.add({ at: t0 + i, method: 'cashu', asset: 'sat', amount: 1n });
  assert.is(book.size, SALES_KEPT);
  assert.is(book.since, t0 + 10, 'complete from after the newest payment it forgot');
  book.prune(t0 + SALES_WINDOW_MS + 100);
  assert.is(book.size, SALES_KEPT - 90, 'older than the window: gone');
  assert.is(book.since, t0 + 100);
  const sums = book.totals(0, Number.MAX_SAFE_INTEGER);
  assert.is(sums[0]!.payments, book.size);
});

test.run();
