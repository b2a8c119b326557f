// tier: daemon
/**
 * The per-session payments list must not grow without bound (8,380 top-ups: 116–191 ms per top-up,
 * every reply and event carrying the whole list). A session keeps its first payment, the latest few and exact totals,
 * in memory and across a restart from the journal (and a compacted snapshot).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalStore } from '../../src/sessions/journal.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import { KEPT_PAYMENTS, paymentTotals } from '../../src/sessions/model.ts';

test(
  '2,000 top-ups: the session keeps the first and the ' + 'latest payments, totals are exact, across a restart',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-payments-'));
    try {
      const pay = (i: number) => ({ method: 'test', reference: `r-${i}`, amount: BigInt(i + 1), asset: 'USDC', at: i });
      const manager = await SessionManager.open({ store: new JournalStore({ dir, compactRecords: 700 }) });
      const mac = '02:00:00:00:10:01';
      const first = await manager.activate({ mac, metric: 'bytes', allotment: 10n, payment: pay(0) });
      for (let i = 1; i < 2000; i++) await manager.activate({ mac, metric: 'bytes', allotment: 10n, payment: pay(i) });
      const check = (s: NonNullable<ReturnType<SessionManager['get']>>): void => {
        assert.is(s.allotment, 20_000n);
        assert.is(s.payments.length, KEPT_PAYMENTS);
        assert.is(s.payments[0]!.reference, 'r-0', 'the first payment (a voucher) stays');
        assert.equal(
          s.payments.slice(1).map((p) => p.reference),
          ['r-1995', 'r-1996', 'r-1997', 'r-1998', 'r-1999'],
        );
        assert.equal(paymentTotals(s), { count: 2000, paid: (2000n * 2001n) / 2n });
      };
      check(manager.get(first.session.id)!);
      await manager.close();
      const again = await SessionManager.open({ store: new JournalStore({ dir }) });
      check(again.get(first.session.id)!);
      assert.ok(
        again.isApplied({ method: 'test', reference: 'r-7' }),
        'dropped from the list, still refused as a replay',
      );
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
