// tier: fast
/**
 * The printed voucher book (`vouchers.json`, payments/local-voucher/store.ts) against the shared damage suite: a
 * storage/json-table under the `money-table` verdict, so a book cut, bit-flipped, emptied, deleted, rolled back or
 * replaced by a directory is refused (ERR_VOUCHER_STORE) and never read as a book with fewer codes used.
 */
import { VoucherStore } from '../../src/payments/local-voucher/store.ts';
import { durableFileSuite } from '../storage/durable-file-suite.ts';

const NOW = 1_750_000_000_000;

durableFileSuite<VoucherStore>('vouchers.json (printed voucher book)', {
  kind: 'money-table',
  file: 'vouchers.json',
  code: 'ERR_VOUCHER_STORE',
  open: async (dir) => VoucherStore.open(dir),
  put: async (book, n) => {
    await book.create(
      { plan: 'hour', metric: 'seconds', steps: BigInt(n), allotment: BigInt(n * 3600) },
      { count: 2, expires: null, note: `b${n}`, now: NOW },
    );
  },
  holds: (book) =>
    book.list(NOW).map((b) => JSON.stringify(b, (_, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))),
});
