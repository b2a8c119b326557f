/**
 * The `sales` reply: what the payments made in [since, until) (ms) came to, per payment method and asset, from the
 * router's sales book (sessions/sales-book.ts): every payment of every session it sold (the sale and each top-up),
 * for 35 days (at most its newest 20,000 payments). The fleet checks its database against it (docs/fleet.md): the
 * same sums, to the smallest unit. `held_since`: from when the book is complete (its start, or the newest payment it
 * had to forget).
 */
import type { SalesSums } from './backend.ts';

export interface SalesTotal {
  method: string;
  asset: string;
  /** Decimal, the asset's smallest unit. */
  amount: string;
  payments: number;
}

export function salesReply(
  book: SalesSums,
  since: number,
  until: number,
): { since: number; until: number; held_since: number; totals: SalesTotal[] } {
  const totals = book
    .totals(since, until)
    .sort((a, b) => (a.method === b.method ? (a.asset < b.asset ? -1 : 1) : a.method < b.method ? -1 : 1))
    .map((t) => ({ method: t.method, asset: t.asset, amount: t.amount.toString(), payments: t.payments }));
  return { since, until, held_since: book.since, totals };
}
