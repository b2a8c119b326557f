// tier: fast
/**
 * The printed voucher book (`vouchers.log`, payments/local-voucher/store.ts) against the shared damage suite: a
 * storage/sealed-log under the `money-log` verdict, so a book cut, bit-flipped, emptied, deleted, rolled back or
 * replaced by a directory is refused (ERR_VOUCHER_STORE) and never read as a book with fewer codes used. Its changes
 * are a batch printed, a code sold and a batch revoked: each kind of record the log appends.
 */
import { VoucherStore } from '../../src/payments/local-voucher/store.ts';
import { durableFileSuite } from '../storage/durable-file-suite.ts';

const NOW = 1_750_000_000_000;

/** The book's one batch's hashes, learnt as it is printed (a sale names a code by its hash). */
const printed = new WeakMap<VoucherStore, string[]>();

durableFileSuite<VoucherStore>('vouchers.log (printed voucher book)', {
  kind: 'money-log',
  file: 'vouchers.log',
  code: 'ERR_VOUCHER_STORE',
  open: async (dir) => VoucherStore.open(dir),
  close: (book) => book.close(),
  put: async (book, n) => {
    if (n === 1) {
      const { codes } = await book.create(
        { plan: 'hour', metric: 'seconds', steps: 1n, allotment: 3600n },
        { count: 2, expires: null, note: 'b1', now: NOW },
      );
      printed.set(book, codes);
    } else if (n === 2) {
      await book.redeem(book.find(printed.get(book)![0]!)!.hash, '02:00:00:00:0b:01', NOW);
    } else if (n === 3) {
      await book.revoke(book.list(NOW)[0]!.id, NOW);
    } else {
      await book.create(
        { plan: 'hour', metric: 'seconds', steps: BigInt(n), allotment: BigInt(n * 3600) },
        { count: 2, expires: null, note: `b${n}`, now: NOW },
      );
    }
  },
  holds: (book) => [
    ...book.list(NOW).map((b) => JSON.stringify(b, (_, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))),
    ...book.unconfirmed().map((u) => u.hash),
  ],
});
