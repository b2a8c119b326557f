/**
 * The `sales` reply: what the sessions the journal holds were paid, per payment method and asset, for payments made in
 * [since, until) (ms). The fleet checks its database against it (docs/fleet.md): the same sums, to the smallest unit.
 * It covers what the journal still holds: live sessions, and ended ones within the journal's retention (the newest
 * 1,000, for 24 hours); `held_since` is the start of the oldest session it holds.
 */
import type { Session } from '../sessions/index.ts';

export interface SalesTotal {
  method: string;
  asset: string;
  /** Decimal, the asset's smallest unit. */
  amount: string;
  payments: number;
}

export function salesReply(
  sessions: readonly Session[],
  since: number,
  until: number,
): { since: number; until: number; held_since: number | null; totals: SalesTotal[] } {
  const sums = new Map<string, { method: string; asset: string; amount: bigint; payments: number }>();
  let heldSince: number | null = null;
  for (const s of sessions) {
    if (heldSince === null || s.createdAt < heldSince) heldSince = s.createdAt;
    for (const p of s.payments) {
      if (p.at < since || p.at >= until) continue;
      const key = `${p.method}\u0000${p.asset}`;
      const sum = sums.get(key) ?? { method: p.method, asset: p.asset, amount: 0n, payments: 0 };
      sum.amount += p.amount;
      sum.payments++;
      sums.set(key, sum);
    }
  }
  const totals = [...sums.values()]
    .sort((a, b) => (a.method === b.method ? (a.asset < b.asset ? -1 : 1) : a.method < b.method ? -1 : 1))
    .map((t) => ({ method: t.method, asset: t.asset, amount: t.amount.toString(), payments: t.payments }));
  return { since, until, held_since: heldSince, totals };
}
