// tier: fast
/**
 * The two secret keys (voucher.key, nostr.key: the `secret-key` verdict, storage/key-file.ts) against the shared damage
 * suite: each is written once and sealed beside, so a key cut, bit-flipped, emptied, deleted, replaced or with a
 * directory in its place is refused with its owner's code — never read as "never made" and made anew (a new
 * nostr.key would be a different router to every client; a new voucher.key would make every printed code unknown).
 */
import { VoucherStore } from '../../src/payments/local-voucher/store.ts';
import { NOSTR_KEY_FILE, openRouterKey, type RouterKey } from '../../src/payments/cashu/nostr/key.ts';
import { durableFileSuite } from './durable-file-suite.ts';

const NOW = 1_750_000_000_000;

durableFileSuite<VoucherStore>('voucher.key (the printed codes’ hash key)', {
  kind: 'secret-key',
  file: 'voucher.key',
  code: 'ERR_VOUCHER_STORE',
  open: async (dir) => VoucherStore.open(dir),
  put: async (book, n) => {
    await book.create(
      { plan: 'hour', metric: 'seconds', steps: 1n, allotment: 3600n },
      { count: 1, expires: null, note: `b${n}`, now: NOW },
    );
  },
  holds: (book) => book.list(NOW).length,
});

durableFileSuite<RouterKey>('nostr.key (the router’s Nostr identity)', {
  kind: 'secret-key',
  file: NOSTR_KEY_FILE,
  code: 'ERR_NOSTR_KEY',
  open: (dir) => openRouterKey(dir),
  // Made once, at the first open: nothing changes it after.
  put: async () => undefined,
  holds: (key) => key.pubkey,
  changesWrite: false,
});
