// tier: fast
/**
 * The shared purchase's split rule under the kernel quota (portal/kernel-quota-share.ts), on its own: each device's
 * new limit from the kernel's count, the meter's billings since the install and what an earlier split left owed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ShareLedger, type QuotaCount } from '../../src/portal/kernel-quota-share.ts';

const A = '02:00:00:00:0e:01';
const B = '02:00:00:00:0e:02';

const split = (ledger: ShareLedger, counts: Record<string, QuotaCount>, shares: Record<string, number>) =>
  ledger.split(
    Object.entries(shares).map(([mac, shareBytes]) => ({ mac, shareBytes })),
    (mac) => (counts[mac] === undefined ? undefined : { mac, limitBytes: counts[mac]!.limitBytes }),
    (mac) => counts[mac],
  );

test('a count going on: its limit is the count plus the share, less what the kernel counted beyond the billing', () => {
  const ledger = new ShareLedger();
  ledger.installed(A);
  ledger.installed(B);
  ledger.noteBilled(A, 1_000);
  ledger.noteBilled(B, 2_000);
  // A passed 500 B after the meter's reading (1,500 counted, 1,000 billed): they come off its share.
  const plan = split(
    ledger,
    { [A]: { limitBytes: 5_000, usedBytes: 1_500 }, [B]: { limitBytes: 4_000, usedBytes: 2_000 } },
    {
      [A]: 2_000,
      [B]: 2_000,
    },
  );
  assert.equal(plan, { next: [{ mac: A, limitBytes: 1_500 + 1_500 }], fresh: [] });
});

test('a quota an earlier run left (billing unknown): nothing charged; an unchanged limit is no change', () => {
  const plan = split(new ShareLedger(), { [A]: { limitBytes: 3_000, usedBytes: 1_000 } }, { [A]: 2_000 });
  assert.equal(plan, { next: [], fresh: [] });
});

test('a quota used up: a fresh count of the share less what passed unbilled, owed to the next billing', () => {
  const ledger = new ShareLedger();
  ledger.installed(A);
  ledger.noteBilled(A, 2_500);
  // The kernel lists no more than the limit; 500 B of it passed after the reading.
  const plan = split(ledger, { [A]: { limitBytes: 3_000, usedBytes: 3_000 } }, { [A]: 4_000 });
  assert.equal(plan, { next: [], fresh: [{ entry: { mac: A, limitBytes: 3_500 }, owed: 500 }] });
  ledger.installed(A);
  ledger.owe(A, 500);
  // The meter bills those 500 B later: they pay off what is owed, not the new count.
  ledger.noteBilled(A, 800);
  const after = split(ledger, { [A]: { limitBytes: 3_500, usedBytes: 300 } }, { [A]: 3_000 });
  assert.equal(after, { next: [{ mac: A, limitBytes: 300 + 3_000 }], fresh: [] });
});

test('owed bytes paid off count as billed when the fresh count is used up in turn (no excess charged twice)', () => {
  const ledger = new ShareLedger();
  ledger.installed(A);
  ledger.owe(A, 1_500);
  ledger.noteBilled(A, 1_500); // all of it paid off what was owed: billed 0, paid off 1,500
  ledger.noteBilled(A, 2_000);
  // Used up at 3,500: billed since install 2,000 + 1,500 paid off = 3,500, so nothing passed unbilled.
  const plan = split(ledger, { [A]: { limitBytes: 3_500, usedBytes: 3_500 } }, { [A]: 1_000 });
  assert.equal(plan.fresh, [{ entry: { mac: A, limitBytes: 1_000 }, owed: 0 }]);
});

test("what is still owed two splits on was the estimate's excess: dropped", () => {
  const ledger = new ShareLedger();
  ledger.installed(A);
  ledger.owe(A, 700);
  const count = { [A]: { limitBytes: 10_000, usedBytes: 1_000 } };
  split(ledger, count, { [A]: 5_000 });
  split(ledger, count, { [A]: 5_000 });
  // The owed 700 dropped: the next 700 billed count against the count, not against the old debt.
  ledger.noteBilled(A, 700);
  assert.equal(split(ledger, count, { [A]: 5_000 }), {
    next: [{ mac: A, limitBytes: 1_000 + 5_000 - 300 }],
    fresh: [],
  });
});

test.run();
