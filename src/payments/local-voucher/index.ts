/**
 * Printed vouchers without a RADIUS server (docs/vouchers.md): batches of one-use codes for a plan, made over ubus
 * (`voucher_create`, LuCI's Vouchers page), sold through the `voucher` door before RADIUS. Cheap and config-free, so
 * always built, like the trial ledger; its LAN door runs once a batch was ever printed (from the first batch on: no
 * restart).
 */
import type { PaymentPart, PaymentPlugin, PluginHost } from '../plugin.ts';
import type { UbusFace } from '../plugin-faces.ts';
import { systemClock, type Clock } from '../../time.ts';
import { SluiceError } from '../../errors.ts';
import type { PaymentRef, Session } from '../../sessions/index.ts';
import { batchTermsOf, LocalVoucherMethod, VOUCHER_METHOD_NAME } from './method.ts';
import { CURRENCY, MAX_DECIMALS, type BatchPrice } from './book.ts';
import { VoucherStore } from './store.ts';
import { voucherLanRoute } from './lan-route.ts';
import type { VoucherMethod } from '../voucher/voucher.ts';
import type { PaymentMethod } from '../types.ts';
import { payPageUrl } from '../../config/index.ts';

/** Printed vouchers' batches (voucher_create, voucher_list, voucher_revoke). */
declare module '../plugin-faces.ts' {
  interface UbusFace {
    vouchers?: VoucherBook;
  }
}

/** The name logs and a left-out method say (the method it opens: a damaged book takes the `voucher` door down). */
const NAME = VOUCHER_METHOD_NAME;

/**
 * The method behind this door is RADIUS's voucher (payments/radius/: the one plugin standing behind it), known by its
 * name: its class is read only when RADIUS opens.
 */
const isRadiusVoucher = (m: PaymentMethod | null): m is VoucherMethod => m?.name === NAME;

const unavailable = (): SluiceError =>
  new SluiceError(
    'ERR_VOUCHER_STORE',
    'the voucher book cannot be read back (the log says why; docs/vouchers.md): no batch can be made, listed ' +
      'or revoked',
  );

function book(face: UbusFace | null): VoucherBook {
  if (!face?.vouchers) throw unavailable();
  return face.vouchers;
}

/** What the ubus methods reach (the opened plugin's face). */
export interface VoucherBook {
  create(args: {
    plan: string;
    count: bigint;
    steps: bigint;
    expires?: bigint;
    note?: string;
    /** What a ticket is sold for at the counter, in the currency's smallest unit (with `currency`). */
    price?: bigint;
    currency?: string;
    /** The currency's decimals (default 2: cents). */
    decimals?: bigint;
  }): Promise<Record<string, unknown>>;
  list(): Record<string, unknown>;
  revoke(batch: string): Promise<Record<string, unknown>>;
}

export const localVoucherPlugin: PaymentPlugin = {
  name: NAME,
  damagedState: 'ERR_VOUCHER_STORE',
  register(add) {
    // POST /voucher and the pay page's form, once a batch exists (read from the state dir, not the book that opened).
    add.lanUse({ name: 'vouchers', on: (c) => VoucherStore.exists(c.main.stateDir) });
    // The voucher form (GET /'s `methods.voucher`): RADIUS's vouchers, or printed ones' when a batch exists and the
    // book read back.
    add.payForm({
      key: 'voucher',
      offered: (c, running) => c.radius.enabled || (running && VoucherStore.exists(c.main.stateDir)),
    });
    // The door of printed and RADIUS vouchers alike (the RADIUS method stands behind this folder's).
    add.lanRoute(voucherLanRoute);
    add.ubusMethod('voucher_create', {
      args: {
        plan: { kind: 'string', required: true, maxLength: 64 },
        count: { kind: 'count', required: true },
        steps: { kind: 'count', required: true },
        expires: { kind: 'count' },
        note: { kind: 'string', maxLength: 64 },
        price: { kind: 'amount' },
        currency: { kind: 'string', maxLength: 12 },
        decimals: { kind: 'count' },
      },
      adminOnly: true,
      handler: (a, face) => book(face).create(a as Parameters<VoucherBook['create']>[0]),
    });
    add.ubusMethod('voucher_list', { args: {}, adminOnly: true, handler: (_a, face) => book(face).list() });
    add.ubusMethod('voucher_revoke', {
      args: { batch: { kind: 'string', required: true, maxLength: 16 } },
      adminOnly: true,
      handler: (a, face) => book(face).revoke(a.batch as string),
    });
  },
  open: (ctx) => openLocalVouchers(ctx, systemClock),
};

/** voucher_create's price arguments → the batch's price; none without a price (or a price of 0). */
function batchPriceOf(a: { price?: bigint; currency?: string; decimals?: bigint }): BatchPrice | undefined {
  const bad = (argument: string, message: string) =>
    new SluiceError('ERR_INVALID_ARGUMENT', `${argument}: ${message}`, { details: { argument } });
  if (a.price === undefined || a.price === 0n) {
    if (a.currency !== undefined || a.decimals !== undefined) throw bad('price', 'currency and decimals need a price');
    return undefined;
  }
  if (a.currency === undefined || !CURRENCY.test(a.currency))
    throw bad('currency', 'a code of 1 to 12 letters and digits ("EUR") is needed with a price');
  const decimals = a.decimals ?? 2n;
  if (decimals > BigInt(MAX_DECIMALS)) throw bad('decimals', `0 to ${MAX_DECIMALS}`);
  return { amount: a.price, currency: a.currency, decimals: Number(decimals) };
}

/** A price as the replies give it: the amount a decimal string of the smallest unit, as `sales` gives amounts. */
const priceView = (p: BatchPrice | null | undefined) => (p ? { ...p, amount: p.amount.toString() } : null);

/** The plugin's part, on `clock` (tests: fake time). */
export async function openLocalVouchers(
  {
    config,
    sessions,
    onSession,
    methodBehind,
    servesChanged,
  }: Pick<PluginHost, 'config' | 'sessions' | 'onSession'> &
    Partial<Pick<PluginHost, 'servesChanged' | 'methodBehind'>>,
  clock: Clock,
): Promise<PaymentPart> {
  const store = VoucherStore.open(config.main.stateDir);
  // The RADIUS voucher while RADIUS sells (a reload switches it on and off): codes not in the book go to it.
  const radius = (): VoucherMethod | null => {
    const behind = methodBehind?.(NAME) ?? null;
    return isRadiusVoucher(behind) ? behind : null;
  };
  const method = new LocalVoucherMethod(store, radius);
  let current = config;
  const now = (): number => clock.now();
  // The journal holds a sold code's session: the use is final (a crash later cannot give the code back).
  const confirm = (payments: readonly PaymentRef[]): void => {
    const hashes = payments.filter((p) => p.method === NAME).map((p) => p.reference.split('/')[1] ?? '');
    if (hashes.length > 0) void store.confirm(hashes, now()).catch(() => undefined);
  };
  const unsubscribe = [
    onSession('started', (s: Session) => confirm(s.payments)),
    onSession('topup', (_s: Session, p: PaymentRef) => confirm([p])),
  ];
  const vouchers: VoucherBook = {
    async create({ plan, count, steps, expires, note, ...priced }) {
      const at = now();
      const price = batchPriceOf(priced);
      if (expires !== undefined && Number(expires) * 1000 <= at) {
        throw new SluiceError('ERR_INVALID_ARGUMENT', 'expires: a moment in the future (seconds since the epoch)', {
          details: { argument: 'expires' },
        });
      }
      const terms = batchTermsOf(current, plan, steps);
      const first = !VoucherStore.exists(config.main.stateDir);
      const made = await store.create(terms, {
        count: Number(count > 100_000n ? 100_000n : count),
        expires: expires === undefined ? null : Number(expires) * 1000,
        note: note ?? '',
        now: at,
        ...(price && { price }),
      });
      // The first batch: POST /voucher and the page's form come to be served now (the LAN endpoint follows).
      // A door that fails to open is logged by the endpoint; the batch is made either way.
      if (first) await servesChanged?.().catch(() => undefined);
      return {
        batch: made.batch.id,
        plan,
        steps,
        count: made.codes.length,
        metric: terms.metric,
        allotment: terms.allotment,
        expires: expires ?? null,
        note: note ?? '',
        price: priceView(price),
        codes: made.codes,
      };
    },
    list: () => ({
      // Where the tickets send a phone: the counter page prints it without reading the config.
      pay_page: payPageUrl(current.http),
      batches: store.list(now()).map((b) => ({
        ...b,
        price: priceView(b.price),
        created: Math.floor(b.created / 1000),
        expires: b.expires === null ? null : Math.floor(b.expires / 1000),
      })),
    }),
    async revoke(batch) {
      return { batch, revoked: await store.revoke(batch, now()) };
    },
  };
  return {
    methods: [method],
    reconfigure: (next) => {
      current = next;
    },
    // A use written whose session the journal never got (a kill -9 between the two writes) is given back; one it
    // holds is final.
    async reconcile() {
      const held: string[] = [];
      for (const { hash, batch } of store.unconfirmed()) {
        if (sessions.isApplied({ method: NAME, reference: `${batch}/${hash}` })) held.push(hash);
        else await store.release(hash, now());
      }
      await store.confirm(held, now());
    },
    close: async () => {
      for (const off of unsubscribe) off();
      await store.close();
    },
    ubus: { vouchers },
  };
}
