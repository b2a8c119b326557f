/**
 * When the resolver looks at each open intent again (docs/tollgate.md "Custody and crash table"), so that a mint gone
 * for good is not asked every 5 s forever and its intents do not hold what others need:
 *   - the mint answered and the intent still holds its place (a swap, an invoice within its hold): again in 5 s;
 *   - the mint answered, an invoice past its hold (lapsed, invoice-slots.ts): 30 s, doubling to 10 min;
 *   - no answer (unreachable, 5xx, rate limited): 5 s doubling to 10 min; after STRANDED_AFTER_LOOKS such looks in a
 *     row the intent is **stranded**: kept on flash (money may have been paid: the customer's claim stands), shown in
 *     ubus `stats` (`cashu.stranded`), holding no invoice place and no room in max_balance, looked at every 10 min
 *     and whenever its page asks, and resolved as any other once the mint answers again.
 * Stranded, and the mint answering again, are written to the ledger (store.markStranded) before the log or the stats
 * say so: a restart keeps a stranded intent stranded (shown, holding nothing, looked at once at start, then every 10
 * min). The rest is in memory: a restart looks at every intent at once and counts unanswered looks from zero (a lapsed
 * invoice never holds again: its hold is counted from its creation).
 */
import { toSluiceError } from '../../errors.ts';
import type { Log, LogFields } from '../../log.ts';
import type { Clock, Timers } from '../../time.ts';
import type { BackgroundPass } from '../plugin.ts';
import { ScheduledPass } from '../scheduled-pass.ts';
import { isLightning, type InvoiceSlots } from './invoice-slots.ts';
import type { SwapIntent } from './ledger-state.ts';
import type { CashuStore } from './store.ts';

/** The resolver's pass: every 5 s while any intent is open (an intent not due is passed over). */
export const RESOLVE_INTERVAL_MS = 5_000;
/** The longest wait between two looks at one intent. */
export const MAX_LOOK_INTERVAL_MS = 10 * 60_000;
/** The first wait for an invoice the mint answered that no longer holds a place. */
export const LAPSED_LOOK_MS = 30_000;
/** Unanswered looks in a row (5 s doubling: ≈ 21 minutes) after which an intent is stranded. */
export const STRANDED_AFTER_LOOKS = 8;

/**
 * The resolver's passes again, RESOLVE_INTERVAL_MS after one left an intent open (`soon`), driven by the plugin host
 * (`background`): none at the start (the reconcile resolved every open intent), then as a pass asks; stopped when the
 * plugin closes: `endExchanges` ends the swaps in flight (each intent stays on flash, the next start resolves it),
 * then the pass in flight is awaited.
 */
export function looksAgain(o: {
  pass(): Promise<void>;
  halted(): boolean;
  endExchanges(): void;
  log: Log | undefined;
  clock: Clock;
  timers: Timers;
}): { soon(): void; stop(): void; background: BackgroundPass } {
  const passes = new ScheduledPass({
    run: () => o.pass(),
    retry: { minMs: RESOLVE_INTERVAL_MS, maxMs: RESOLVE_INTERVAL_MS },
    halted: o.halted,
    failed: (err) => o.log?.warn('cashu: resolving open intents failed', { reason: toSluiceError(err).message }),
    clock: o.clock,
    timers: o.timers,
  });
  return {
    soon: () => passes.soon(RESOLVE_INTERVAL_MS),
    stop: () => void passes.stop(),
    background: {
      start: () => passes.start(null),
      stop: async () => {
        o.endExchanges();
        await passes.stop();
      },
    },
  };
}

interface Look {
  next: number;
  /** Answered looks since it stopped holding a place. */
  idle: number;
  /** Unanswered looks in a row. */
  fails: number;
}

const doubling = (base: number, n: number): number => Math.min(MAX_LOOK_INTERVAL_MS, base * 2 ** Math.min(n, 20));

export class IntentLooks {
  private readonly looks = new Map<string, Look>();

  /** `ledger`: where an intent's stranding is kept (store.strandedSince, store.markStranded). */
  constructor(readonly ledger: () => Pick<CashuStore, 'strandedSince' | 'markStranded'>) {}

  private of(ref: string): Look {
    let l = this.looks.get(ref);
    if (!l) {
      l = { next: 0, idle: 0, fails: 0 };
      this.looks.set(ref, l);
    }
    return l;
  }

  /** Whether the resolver looks at `ref` on this pass. */
  due(ref: string, now: number): boolean {
    const l = this.looks.get(ref);
    return l === undefined || now >= l.next;
  }

  /** Looked at on the next pass (the page asks about its quote; an explicit resolve); every one without `ref`. */
  wake(ref?: string): void {
    if (ref === undefined) for (const l of this.looks.values()) l.next = 0;
    else if (this.looks.has(ref)) this.looks.get(ref)!.next = 0;
  }

  /**
   * The mint answered and the intent stays open; `holding`: it holds its place (looked at often). True when it was
   * stranded (the caller writes that it is not, then says so in the log).
   */
  answered(ref: string, now: number, holding: boolean): boolean {
    const l = this.of(ref);
    l.fails = 0;
    if (holding) {
      l.idle = 0;
      l.next = now + RESOLVE_INTERVAL_MS;
    } else {
      l.next = now + doubling(LAPSED_LOOK_MS, l.idle);
      l.idle++;
    }
    return this.isStranded(ref);
  }

  /**
   * The mint did not answer about `ref`. True when this look strands it (the caller writes that, then says so once,
   * loudly). A stranded intent is looked at every 10 minutes, also the first time after a restart.
   */
  unanswered(ref: string, now: number): boolean {
    const l = this.of(ref);
    l.fails++;
    const stranded = this.isStranded(ref);
    l.next = now + (stranded ? MAX_LOOK_INTERVAL_MS : doubling(RESOLVE_INTERVAL_MS, l.fails));
    return !stranded && l.fails >= STRANDED_AFTER_LOOKS;
  }

  /** When `ref` was stranded, or null (it is not). */
  strandedSince(ref: string): number | null {
    return this.ledger().strandedSince(ref);
  }

  isStranded(ref: string): boolean {
    return this.strandedSince(ref) !== null;
  }

  /** The intent ended: nothing to look at. */
  forget(ref: string): void {
    this.looks.delete(ref);
  }
}

/** At most this many stranded intents are listed in `stats` (all are counted). */
const LISTED = 20;

/**
 * ubus stats' `cashu`: held sat per mint and in total, open swaps and invoices (`open_invoices` all unpaid on flash,
 * `invoice_places` those holding a place), the paid Lightning quotes someone else minted (remembered on flash, the
 * last 500), and the intents a silent mint stranded (`stranded`: how many, the sat they may bring, and the first ones
 * by device, amount and mint, so the staff can settle them with the customer: money may have been paid for each).
 * Counts, amounts and devices only, never a proof or a quote id (`logged`: a reference as logs carry it).
 */
export function cashuStats({
  store,
  slots,
  looks,
  now,
  logged,
}: {
  store: CashuStore;
  slots: InvoiceSlots;
  looks: IntentLooks;
  now: number;
  logged: (ref: string) => string;
}): Record<string, unknown> {
  const open = store.openIntents();
  const stranded = open.filter(({ intent, state }) => state === 'open' && looks.isStranded(intent.ref));
  return {
    balance: Object.fromEntries([...store.balances()].map(([m, v]) => [m, v.toString()])),
    total: store.total().toString(),
    open_swaps: open.filter(({ intent }) => !isLightning(intent.ref)).length,
    open_invoices: open.filter(({ intent, state }) => state === 'open' && isLightning(intent.ref)).length,
    invoice_places: slots.holding(store, now).length,
    lightning_claimed: store.claimedCount(),
    stranded: {
      count: stranded.length,
      sat: stranded.reduce((s, { intent }) => s + BigInt(intent.quote.price), 0n).toString(),
      intents: stranded.slice(0, LISTED).map(({ intent: i }) => ({
        reference: logged(i.ref),
        mint: i.mint,
        mac: i.mac,
        sat: i.quote.price,
        since: Math.floor((looks.strandedSince(i.ref) ?? 0) / 1000),
      })),
    },
  };
}

/**
 * Records one look at `intent` (`answered`: the mint said something); when that strands it or ends its stranding,
 * writes so to the ledger, then says so in the log.
 */
export async function recordLook(
  looks: IntentLooks,
  intent: SwapIntent,
  look: {
    /** The mint said something about it. */
    answered: boolean;
    now: number;
    /** It holds an invoice place now. */
    holding: boolean;
    logged: (ref: string) => string;
    log: Log | undefined;
  },
): Promise<void> {
  const { answered, now, holding, logged, log } = look;
  const fields: LogFields = {
    reference: logged(intent.ref),
    mint: intent.mint,
    mac: intent.mac,
    sat: intent.quote.price,
  };
  if (answered) {
    if (!looks.answered(intent.ref, now, holding)) return;
    await looks.ledger().markStranded(intent.ref, null);
    log?.info('cashu: the mint answers again about a stranded payment; it is resolved as any other', fields);
    return;
  }
  if (!looks.unanswered(intent.ref, now)) return;
  await looks.ledger().markStranded(intent.ref, now);
  log?.error(
    `cashu: the mint has not answered about a payment ${STRANDED_AFTER_LOOKS} times in a row; it is kept as ` +
      'stranded (the customer may have paid: ubus stats cashu.stranded), holds no invoice place and no room, and ' +
      'is asked about every 10 minutes',
    { code: 'ERR_CASHU_MINT_UNAVAILABLE', ...fields },
  );
}
