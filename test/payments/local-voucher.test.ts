// tier: fast
// Printed vouchers (payments/local-voucher): batches of one-use codes stored as keyed hashes, sold through the
// `voucher` door before RADIUS, once ever; wrong codes limited per client; the book fails closed; a use the journal
// never got is given back at the next start. Fake time, temp files, the real merchant and session manager.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Merchant, Pricing } from '../../src/merchant/index.ts';
import { createPaymentRegistry } from '../../src/payments/index.ts';
import { VoucherMethod } from '../../src/payments/voucher/voucher.ts';
import { openLocalVouchers } from '../../src/payments/local-voucher/index.ts';
import { RETAIN_MS, VoucherStore, VOUCHERS_FILE, VOUCHER_KEY_FILE } from '../../src/payments/local-voucher/store.ts';
import { CODE_ALPHABET, CODE_BITS, normalizeCode } from '../../src/payments/local-voucher/codes.ts';
import { SluiceError } from '../../src/errors.ts';
import type { Config } from '../../src/config/index.ts';
import { scanRecords, sealOf, sealPath, writeSeal } from '../../src/storage/index.ts';
import { encodeRecord } from '../../src/storage/record-log.ts';
import { codeOf, hour, rig, START } from './voucher-rig.ts';

/** The records of a book's log, as JSON. */
const records = (log: Buffer): Array<Record<string, unknown>> =>
  scanRecords(log, 0).records.map((rec) => JSON.parse(rec.payload.toString('utf8')) as Record<string, unknown>);

/** Writes a book of `recs` and its seal, as the store would have. */
async function sealedBook(path: string, recs: readonly unknown[]): Promise<void> {
  const bytes = Buffer.concat(recs.map((rec) => encodeRecord(Buffer.from(JSON.stringify(rec)))));
  writeFileSync(path, bytes);
  await writeSeal(sealPath(path), [sealOf(bytes)]);
}

test(
  'a batch: codes of 10 unambiguous letters in XXXX-XXXX-XX, 50 bits, shown once; only keyed hashes on flash, ' +
    '0600',
  async () => {
    const r = await rig();
    const made = await r.book.create({ plan: 'hour', count: 20n, steps: 2n, note: 'counter' });
    const codes = made.codes as string[];
    assert.is(codes.length, 20);
    assert.is(new Set(codes).size, 20);
    for (const c of codes) assert.match(c, /^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{2}$/);
    assert.not.match(CODE_ALPHABET, /[01OIl]/);
    assert.ok(CODE_BITS >= 40, `${CODE_BITS} bits`);
    const text = readFileSync(join(r.dir, VOUCHERS_FILE), 'latin1');
    for (const c of codes) assert.not.ok(text.includes(normalizeCode(c)!) || text.includes(c), 'no code in the book');
    assert.is(statSync(join(r.dir, VOUCHERS_FILE)).mode & 0o777, 0o600);
    assert.is(statSync(join(r.dir, VOUCHER_KEY_FILE)).mode & 0o777, 0o600);
    // Where the tickets send a phone (the Counter page prints it without reading the config): http://<listen>/portal.
    assert.is(r.book.list().pay_page, 'http://192.168.1.1:2122/portal');
    assert.equal((r.book.list().batches as Array<Record<string, unknown>>)[0], {
      id: made.batch,
      price: null,
      plan: 'hour',
      steps: 2n,
      metric: 'seconds',
      allotment: 7200n,
      count: 20,
      used: 0,
      unused: 20,
      expired: 0,
      revoked: false,
      created: Math.floor(START / 1000),
      expires: null,
      note: 'counter',
    });
    assert.is(
      JSON.stringify(r.book.list(), (_k, v) => (typeof v === 'bigint' ? String(v) : v)).includes(codes[0]!),
      false,
      'the list never shows a code',
    );
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  "a code sells its batch's plan and steps once, ever: " + 'typed again on any device it is refused, not moved',
  async () => {
    const r = await rig();
    const made = await r.book.create({ plan: 'gig', count: 2n, steps: 3n });
    const [code] = made.codes as string[];
    // Typed as a customer would: lower case, spaces instead of dashes.
    const sold = await r.redeem('02:00:00:00:0b:01', code!.toLowerCase().replace(/-/g, ' '));
    assert.is(sold.session.metric, 'bytes');
    assert.is(sold.session.allotment, 3n << 30n);
    assert.is(sold.session.plan, 'gig');
    assert.is(sold.session.expiresAt, START + 86_400_000, "the plan's time_limit");
    assert.match(
      sold.receipt.reference,
      new RegExp(`^${made.batch}/[0-9a-f]{32}$`),
      'the batch rides with the payment',
    );
    assert.is((await codeOf(r.redeem('02:00:00:00:0b:02', code!))).code, 'ERR_PAYMENT_REPLAYED', 'another device');
    assert.is((await codeOf(r.redeem('02:00:00:00:0b:01', code!))).code, 'ERR_PAYMENT_REPLAYED', 'the same device');
    assert.not.ok(r.manager.byMac('02:00:00:00:0b:02'), 'nothing moved');
    // The journal forgot (a fresh session manager): the book still refuses it.
    const again = await rig(r.dir);
    assert.is((await codeOf(again.redeem('02:00:00:00:0b:03', code!))).code, 'ERR_PAYMENT_REPLAYED', 'from the book');
    const [row] = again.book.list().batches as Array<Record<string, unknown>>;
    assert.equal([row!.used, row!.unused], [1, 1]);
    await r.close();
    await again.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  'wrong codes: five a minute per client, then 429 with the wait (even for a right code); a minute on, guesses ' +
    'again',
  async () => {
    const r = await rig();
    const [code] = (await r.book.create({ plan: 'hour', count: 1n, steps: 1n })).codes as string[];
    const mac = '02:00:00:00:0c:01';
    for (let i = 0; i < 5; i++)
      assert.is((await codeOf(r.redeem(mac, `2222-2222-2${i + 2}`, '10.0.0.9'))).code, 'ERR_VOUCHER_REJECTED');
    const limited = await codeOf(r.redeem(mac, code!, '10.0.0.9'));
    assert.is(limited.code, 'ERR_VOUCHER_GUESS_LIMIT');
    assert.is(limited.details?.retry_after, 12);
    // A new MAC from the same IP is the same guesser; another client is not.
    assert.is((await codeOf(r.redeem('02:00:00:00:0c:02', code!, '10.0.0.9'))).code, 'ERR_VOUCHER_GUESS_LIMIT');
    assert.is((await codeOf(r.redeem('02:00:00:00:0c:03', 'not a code', '10.0.0.10'))).code, 'ERR_VOUCHER_REJECTED');
    await r.time.advance(60_000);
    assert.is((await r.redeem(mac, code!, '10.0.0.9')).session.allotment, 3600n);
    assert.equal(r.method.figures, { sold: 1, wrong: 6, limited: 2 });
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test('right codes are no guesses for the router: 200 customers redeem in one minute under no attack', async () => {
  const r = await rig();
  const codes = (await r.book.create({ plan: 'hour', count: 200n, steps: 1n })).codes as string[];
  for (const [i, code] of codes.entries())
    await r.redeem(`02:00:00:00:dd:${i.toString(16).padStart(2, '0')}`, code, `10.8.${i >> 8}.${i & 255}`);
  assert.is(r.method.figures.sold, 200);
  await r.close();
  rmSync(r.dir, { recursive: true, force: true });
});

test(
  'an expired or revoked batch sells no more (not counted ' + 'as guesses); the list says used / unused / expired',
  async () => {
    const r = await rig();
    const expiring = await r.book.create({
      plan: 'hour',
      count: 3n,
      steps: 1n,
      expires: BigInt(Math.floor(START / 1000) + 3600),
    });
    const revoked = await r.book.create({ plan: 'hour', count: 2n, steps: 1n });
    const [e1, e2] = expiring.codes as string[];
    await r.redeem('02:00:00:00:0d:01', e1!);
    assert.equal(await r.book.revoke(revoked.batch as string), { batch: revoked.batch, revoked: 2 });
    await r.time.advance(3_601_000);
    for (const [code, why] of [
      [e2!, 'expired'],
      [(revoked.codes as string[])[0]!, 'revoked'],
    ] as const) {
      const refused = await codeOf(r.redeem('02:00:00:00:0d:02', code));
      assert.is(refused.code, 'ERR_VOUCHER_REJECTED');
      assert.is(refused.details?.reason, why);
    }
    const rows = Object.fromEntries(
      (r.book.list().batches as Array<Record<string, unknown>>).map((b) => [
        b.id,
        [b.used, b.unused, b.expired, b.revoked],
      ]),
    );
    assert.equal(rows, { [expiring.batch as string]: [1, 0, 2, false], [revoked.batch as string]: [0, 0, 0, true] });
    assert.equal(r.method.figures.wrong, 0);
    // Asked for what the plan does not sell: refused before anything is written.
    assert.is((await codeOf(r.book.create({ plan: 'hour', count: 1n, steps: 11n }))).code, 'ERR_INVALID_ARGUMENT');
    assert.is((await codeOf(r.book.create({ plan: 'nope', count: 1n, steps: 1n }))).code, 'ERR_UNKNOWN_PLAN');
    assert.is(
      (await codeOf(r.book.create({ plan: 'hour', count: 1n, steps: 1n, expires: 5n }))).code,
      'ERR_INVALID_ARGUMENT',
    );
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  'the book fails closed: damaged, or codes without ' + 'their key, is ERR_VOUCHER_STORE, never an empty book',
  async () => {
    const r = await rig();
    await r.book.create({ plan: 'hour', count: 1n, steps: 1n });
    const path = join(r.dir, VOUCHERS_FILE);
    const good = readFileSync(path);
    writeFileSync(path, good.subarray(0, good.length - 5));
    assert.throws(
      () => VoucherStore.open(r.dir),
      (e: SluiceError) => e.code === 'ERR_VOUCHER_STORE',
    );
    assert.ok(
      readdirSync(r.dir).some((f) => f.startsWith(`${VOUCHERS_FILE}.damaged-`)),
      'a copy kept aside for support (storage/sealed-log)',
    );
    assert.equal(readFileSync(path), good.subarray(0, good.length - 5), 'the book itself left as it is');
    await sealedBook(path, [...records(good), { t: 'sold', h: 'a'.repeat(32), u: START, m: '02:00:00:00:0e:01' }]);
    assert.throws(
      () => VoucherStore.open(r.dir),
      (e: SluiceError) => e.code === 'ERR_VOUCHER_STORE',
      'a use of no code',
    );
    await sealedBook(path, records(good));
    rmSync(join(r.dir, VOUCHER_KEY_FILE));
    assert.throws(
      () => VoucherStore.open(r.dir),
      (e: SluiceError) => e.code === 'ERR_VOUCHER_STORE',
      'the key gone',
    );
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  'local first, then RADIUS: a code not in the book goes ' + 'to the RADIUS voucher; its rejection counts as a guess',
  async () => {
    const asked: string[] = [];
    // The RADIUS voucher method, its server's answer scripted (the real server: local-voucher-radius.test.ts).
    const radius = new VoucherMethod({
      client: { request: () => Promise.reject(new Error('no server here')) },
      nas: () => ({ identifier: 'test', ip: '127.0.0.1', calledStationId: 'test' }),
    });
    radius.ask = async ({ request, now }) => {
      const code = request.payment['code'] as string;
      asked.push(code);
      if (code !== 'radius-user') throw new SluiceError('ERR_VOUCHER_REJECTED', 'Invalid voucher');
      const user = 'radius-user';
      return {
        method: 'voucher',
        reference: `${user}/${'0'.repeat(12)}`,
        amount: 0n,
        asset: '',
        at: now,
        terms: {
          metric: 'seconds',
          allotment: 60n,
          expiresAt: null,
          user,
          interimIntervalS: null,
          classes: [],
          replyMessage: null,
          rates: null,
        },
      };
    };
    const r = await rig(undefined, radius);
    const [code] = (await r.book.create({ plan: 'hour', count: 1n, steps: 1n })).codes as string[];
    assert.is((await r.redeem('02:00:00:00:0e:01', code!)).session.allotment, 3600n);
    assert.is((await r.redeem('02:00:00:00:0e:02', 'radius-user')).session.user, 'radius-user');
    assert.is((await codeOf(r.redeem('02:00:00:00:0e:03', 'wrong'))).code, 'ERR_VOUCHER_REJECTED');
    assert.equal(asked, ['radius-user', 'wrong'], 'the local code never reached RADIUS');
    assert.equal(r.method.figures, { sold: 1, wrong: 0, limited: 0 });
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  'a use written whose session the journal never got is ' + 'given back at the next start; one it holds stays used',
  async () => {
    const r = await rig();
    const [lost, kept] = (await r.book.create({ plan: 'hour', count: 2n, steps: 1n })).codes as string[];
    // Sold for real (the journal holds it), but its confirmation not written (the kill came first).
    await r.redeem('02:00:00:00:0f:02', kept!);
    await r.part.close!();
    // As a kill -9 between the book's write and the journal's: the use is on flash, no session holds it.
    const store = VoucherStore.open(r.dir);
    await store.redeem(store.find(lost!)!.hash, '02:00:00:00:0f:01', START);
    await store.close();
    const book = join(r.dir, VOUCHERS_FILE);
    await sealedBook(
      book,
      records(readFileSync(book)).filter((rec) => rec.t !== 'confirmed'),
    );
    assert.is(VoucherStore.open(r.dir).unconfirmed().length, 2, 'both uses on flash, neither confirmed');
    const http = { host: '', port: 0, portalUrl: '' };
    const config = { main: { stateDir: r.dir }, pricing: [hour], http } as unknown as Config;
    const restarted = await openLocalVouchers(
      { config, sessions: r.manager, onSession: r.manager.on.bind(r.manager) },
      r.time,
    );
    await restarted.reconcile!();
    const merchant = new Merchant({
      pricing: new Pricing([hour]),
      sessions: r.manager,
      payments: createPaymentRegistry(restarted.methods),
      clock: r.time,
    });
    const buy = (mac: string, code: string) => merchant.purchase({ mac, payment: { method: 'voucher', code } });
    assert.is((await buy('02:00:00:00:0f:03', lost!)).session.allotment, 3600n, 'given back');
    assert.is((await codeOf(buy('02:00:00:00:0f:04', kept!))).code, 'ERR_PAYMENT_REPLAYED');
    await restarted.close!();
    await r.close();
    rmSync(r.dir, { recursive: true, force: true });
  },
);

test(
  'a sale writes one small record, not the book: the log grows by it in place (same file), a crash mid-append is ' +
    'cut at the next start, and a compaction rewrites the book as it stood',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lv-log-'));
    const path = join(dir, VOUCHERS_FILE);
    const terms = { plan: 'hour', metric: 'seconds', steps: 1n, allotment: 3600n } as const;
    const print = { count: 1000, expires: null, note: '', now: START };
    let book = VoucherStore.open(dir);
    const codes = [...(await book.create(terms, print)).codes, ...(await book.create(terms, print)).codes];
    const before = statSync(path);
    await book.redeem(book.find(codes[0]!)!.hash, '02:00:00:00:0a:01', START);
    const after = statSync(path);
    assert.is(after.ino, before.ino, 'appended in place, not renamed over');
    assert.ok(after.size - before.size < 128, `${after.size - before.size} bytes for a sale in a book of 2000 codes`);
    await book.close();
    // A crash between an append and its seal: a torn record past the sealed bytes, never acknowledged.
    const sealed = readFileSync(path);
    appendFileSync(
      path,
      encodeRecord(Buffer.from(JSON.stringify({ t: 'revoked', id: 'x', at: START }))).subarray(0, 9),
    );
    book = VoucherStore.open(dir);
    assert.equal(readFileSync(path), sealed, 'the torn tail cut');
    assert.is(book.find(codes[0]!)!.used, true);
    await book.close();
    // A crash between a new book's first append and its seal: the record past the empty book's seal is kept.
    const fresh = mkdtempSync(join(tmpdir(), 'sluice-lv-log-'));
    const firstBook = VoucherStore.open(fresh);
    const [one] = (await firstBook.create(terms, { ...print, count: 1 })).codes;
    await firstBook.close();
    await writeSeal(sealPath(join(fresh, VOUCHERS_FILE)), [{ bytes: 0, crc: 0 }]);
    assert.is(VoucherStore.open(fresh).find(one!)?.used, false, 'the batch read back');
    rmSync(fresh, { recursive: true, force: true });
    // Sales until the log passes twice the book (no slack): compacted, then read back the same.
    const small = mkdtempSync(join(tmpdir(), 'sluice-lv-log-'));
    book = VoucherStore.open(small, { compactSlack: 0 });
    const few = (await book.create(terms, { ...print, count: 8 })).codes;
    const first = statSync(join(small, VOUCHERS_FILE)).ino;
    let sold = 0;
    while (statSync(join(small, VOUCHERS_FILE)).ino === first && sold < few.length)
      await book.redeem(book.find(few[sold++]!)!.hash, '02:00:00:00:0a:02', START);
    assert.ok(sold < few.length, 'compacted (a new file renamed in)');
    await book.redeem(book.find(few[sold]!)!.hash, '02:00:00:00:0a:03', START);
    const held = [book.list(START), book.unconfirmed()];
    await book.close();
    const again = VoucherStore.open(small);
    assert.equal([again.list(START), again.unconfirmed()], held);
    assert.is(again.unconfirmed().length, sold + 1);
    // A batch revoked RETAIN_MS ago: its codes dropped at the next write but a use still unconfirmed, its figures kept.
    const pending = again.find(few[0]!)!.hash;
    await again.confirm(
      again
        .unconfirmed()
        .map((u) => u.hash)
        .filter((h) => h !== pending),
      START,
    );
    await again.revoke(again.list(START)[0]!.id, START);
    const later = START + RETAIN_MS + 1;
    await again.create(terms, { ...print, count: 1, now: later });
    await again.close();
    for (const reread of [again, VoucherStore.open(small)]) {
      assert.equal(
        few.map((c) => reread.find(c)?.used ?? null),
        few.map((_, i) => (i === 0 ? true : null)),
        'only the unconfirmed use is still known',
      );
      assert.equal(
        reread.list(later).map((b) => [b.count, b.used, b.revoked]),
        [
          [1, 0, false],
          [8, sold + 1, true],
        ],
      );
    }
    rmSync(small, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  },
);

test.run();
