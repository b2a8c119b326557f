/**
 * The places unpaid Lightning invoices hold (docs/tollgate.md "What an invoice may hold"). Each unpaid invoice is a
 * flash write, a mint quote the resolver asks about every 5 s, and room in max_balance: uncapped, LAN clients asking
 * for invoices they never pay would fill the cap and shut Cashu for everyone. Nothing tells a rotated MAC from a new
 * customer, so the bound is on time, not on who asks:
 *   - an invoice holds a place (and its sat against max_balance) for INVOICE_HOLD_MS from its creation at most (or to
 *     the mint's expiry, if sooner), not the hour a mint's quote may live;
 *   - the places are full (MAX_OPEN_INVOICES, or the invoices' share of max_balance): a new request takes the place
 *     of the oldest invoice that has held one for INVOICE_MIN_HOLD_MS; it is refused only while every place was
 *     taken within the last INVOICE_MIN_HOLD_MS (32 invoices asked in 2 minutes);
 *   - one device holds at most MAX_OPEN_INVOICES_PER_DEVICE places.
 * An invoice that no longer holds a place is **lapsed**, not ended: it is still the device's on flash, paid it is still
 * minted and granted (the page still shows it unpaid), and the resolver asks about it less often (intent-looks.ts)
 * until the mint's expiry ends it. An intent stranded by a mint that does not answer holds no place either.
 */
import { SluiceError } from '../../errors.ts';
import type { SwapIntent } from './ledger-state.ts';
import type { CashuStore } from './store.ts';

export const LN_PREFIX = 'ln:';
export const isLightning = (ref: string): boolean => ref.startsWith(LN_PREFIX);

export const MAX_OPEN_INVOICES_PER_DEVICE = 2;
export const MAX_OPEN_INVOICES = 32;
/**
 * Unpaid invoices together hold at most max_balance / INVOICE_ROOM_DIVISOR of the room, whoever asked for them (any
 * number of MACs): the rest stays for tokens, which pay at once and hold nothing unpaid.
 */
export const INVOICE_ROOM_DIVISOR = 2n;
/** The longest an unpaid invoice holds a place: long enough to pay from a phone, far shorter than a mint's hour. */
export const INVOICE_HOLD_MS = 10 * 60_000;
/** What every invoice is sure of: its place is not given to another request before this. */
export const INVOICE_MIN_HOLD_MS = 2 * 60_000;

const sat = (i: SwapIntent): bigint => i.outputs.reduce((s, o) => s + BigInt(o.amount), 0n);

export class InvoiceSlots {
  /** Invoices let in whose intent is not on flash yet, per device (the store does not count them). */
  private readonly admitting = new Map<string, number>();
  private total = 0;
  private admittingSat = 0n;
  /** Invoices whose place went to a later request before their hold ended (in memory: see intent-looks.ts). */
  private readonly givenUp = new Set<string>();

  /** `stranded`: whether the resolver has stranded an intent (intent-looks.ts). */
  constructor(private readonly stranded: (ref: string) => boolean = () => false) {}

  /** Whether an open intent holds an invoice place (and its room) at `now`. */
  holds(intent: SwapIntent, now: number): boolean {
    if (!isLightning(intent.ref) || this.givenUp.has(intent.ref) || this.stranded(intent.ref)) return false;
    const end = Math.min(intent.at + INVOICE_HOLD_MS, intent.expiry !== undefined ? intent.expiry * 1000 : Infinity);
    return now < end;
  }

  /** The unpaid invoices holding a place, oldest first. */
  holding(store: CashuStore, now: number): SwapIntent[] {
    return store
      .openIntents()
      .filter(({ intent, state }) => state === 'open' && this.holds(intent, now))
      .map(({ intent }) => intent)
      .sort((a, b) => a.at - b.at);
  }

  /** Open invoices on flash that no longer hold a place (lapsed or stranded): still payable, still the device's. */
  lapsed(store: CashuStore, now: number): number {
    return store
      .openIntents()
      .filter(({ intent, state }) => state === 'open' && isLightning(intent.ref) && !this.holds(intent, now)).length;
  }

  /** The intent ended (or is forgotten): nothing to remember about it. */
  forget(ref: string): void {
    this.givenUp.delete(ref);
  }

  /**
   * Refuses `mac` past its own places; takes the place (and the room) of the oldest invoices held past
   * INVOICE_MIN_HOLD_MS while the router's places or the invoices' share of `maxBalance` are full, and refuses when
   * none is; else holds it a place and `want` sat until the release (its intent on flash, or it failed).
   */
  reserve(mac: string, store: CashuStore, want: bigint, maxBalance: bigint, now: number): () => void {
    const held = this.holding(store, now);
    const mine = held.filter((i) => i.mac === mac).length + (this.admitting.get(mac) ?? 0);
    if (mine >= MAX_OPEN_INVOICES_PER_DEVICE) {
      throw new SluiceError(
        'ERR_PAYMENT_IN_PROGRESS',
        'this device has Lightning invoices still open: pay one of them, or ask again in a few minutes',
        { details: { mac } },
      );
    }
    const share = maxBalance / INVOICE_ROOM_DIVISOR;
    let places = held.length + this.total;
    let room = held.reduce((s, i) => s + sat(i), 0n) + this.admittingSat;
    const full = () => places >= MAX_OPEN_INVOICES || room + want > share;
    const giveUp: SwapIntent[] = [];
    for (const old of held) {
      if (!full() || now - old.at < INVOICE_MIN_HOLD_MS) break;
      giveUp.push(old);
      places--;
      room -= sat(old);
    }
    if (full()) {
      throw new SluiceError(
        'ERR_PAYMENT_IN_PROGRESS',
        places >= MAX_OPEN_INVOICES
          ? 'too many Lightning invoices were asked for on this router in the last minutes: pay with a Cashu ' +
              'token, or try again in a minute or two'
          : `unpaid Lightning invoices hold all the room they may (${share} sat): pay with a Cashu token, or try ` +
              'again in a minute or two',
        { details: { invoice_room: share.toString() } },
      );
    }
    for (const old of giveUp) this.givenUp.add(old.ref);
    this.count(mac, 1, want);
    let holding = true;
    return () => {
      if (holding) this.count(mac, -1, -want);
      holding = false;
    };
  }

  private count(mac: string, by: number, sat: bigint): void {
    const n = (this.admitting.get(mac) ?? 0) + by;
    if (n === 0) this.admitting.delete(mac);
    else this.admitting.set(mac, n);
    this.total += by;
    this.admittingSat += sat;
  }
}
