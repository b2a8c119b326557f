/**
 * The router's sales book, pure: every payment of every session it sold (the sale and each top-up), for SALES_WINDOW_MS
 * (35 days, the fleet's default retention of its ledger) and at most SALES_KEPT payments, what ubus `sales` sums. A
 * session keeps only its first and latest payments (KEPT_PAYMENTS) and ended sessions leave the journal after a day;
 * the book is apart from them so that a customer who topped up 50 times is 50 payments in it.
 *
 * On flash it costs no write of its own: each payment is already a journal record (a sale's `open`, a `topup`),
 * applied here as the journal applies it, and the book is written whole with the snapshot at each compaction (one
 * atomic rename, journal.ts). `since`: from when it is complete (its start, or the newest payment it had to forget);
 * `sales` reports it as `held_since`.
 */
import type { PaymentRef } from './model.ts';

/** How long a payment stays: the fleet keeps its ledger 35 days by default (docs/fleet.md). */
export const SALES_WINDOW_MS = 35 * 24 * 3600_000;
/**
 * Most payments kept (≈ 40 bytes each in the snapshot: ≤ 800 KB): 571 a day for the whole window. A router selling
 * more keeps the newest, and `since` says from when its book is complete.
 */
export const SALES_KEPT = 20_000;

/** One payment as the book keeps it: when, by which method, in which asset, how much (smallest unit). */
export type Sale = [at: number, method: string, asset: string, amount: bigint];

export class SalesBook {
  /** Oldest first (appended as sold; a clock stepped back may leave one out of order, which sums do not mind). */
  private sales: Sale[] = [];

  constructor(
    /** From when the book is complete (ms). */
    public since: number,
  ) {}

  get size(): number {
    return this.sales.length;
  }

  add(p: Pick<PaymentRef, 'at' | 'method' | 'asset' | 'amount'>): void {
    this.sales.push([p.at, p.method, p.asset, p.amount]);
    if (this.sales.length > SALES_KEPT) this.forget(this.sales.length - SALES_KEPT);
  }

  /** Drops the payments older than the window. */
  prune(now: number): void {
    let n = 0;
    while (n < this.sales.length && now - this.sales[n]![0] > SALES_WINDOW_MS) n++;
    if (n > 0) this.forget(n);
  }

  private forget(n: number): void {
    for (const s of this.sales.splice(0, n)) if (s[0] + 1 > this.since) this.since = s[0] + 1;
  }

  /** Sums per method and asset of the payments made in [since, until). */
  totals(since: number, until: number): Array<{ method: string; asset: string; amount: bigint; payments: number }> {
    const sums = new Map<string, { method: string; asset: string; amount: bigint; payments: number }>();
    for (const [at, method, asset, amount] of this.sales) {
      if (at < since || at >= until) continue;
      const key = `${method}\u0000${asset}`;
      const sum = sums.get(key) ?? { method, asset, amount: 0n, payments: 0 };
      sum.amount += amount;
      sum.payments++;
      sums.set(key, sum);
    }
    return [...sums.values()];
  }

  /** The payments in chunks of at most `per` (the snapshot's lines; one, empty, for an empty book: its `since`). */
  chunks(per = 1000): Sale[][] {
    const out: Sale[][] = this.sales.length === 0 ? [[]] : [];
    for (let i = 0; i < this.sales.length; i += per) out.push(this.sales.slice(i, i + per));
    return out;
  }

  /** Takes back a chunk the snapshot held. */
  load(sales: readonly Sale[]): void {
    for (const s of sales) this.sales.push([s[0], s[1], s[2], s[3]]);
    if (this.sales.length > SALES_KEPT) this.forget(this.sales.length - SALES_KEPT);
  }

  copy(): SalesBook {
    const book = new SalesBook(this.since);
    book.sales = this.sales.map((s) => [s[0], s[1], s[2], s[3]]);
    return book;
  }
}
