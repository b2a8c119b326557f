/**
 * Which change of a router tells the operator (docs/fleet.md, "Alerts"), pure: what the Routers page shows red or
 * amber is read by the same rules (views.ts routerState, the status' `health`, the gaps' kinds), and an alert is a
 * change of one of them, raised once when it starts and cleared once when it ends. Its words may change while it
 * lasts (silent 2 min, then 3; one damaged table, then two) without a new alert: a change of state, not of figures.
 */
import { routerState, type RouterRow } from './views.ts';

export const ALERT_KINDS = ['red', 'session-gap', 'damaged-tables', 'journal-failing', 'config-problems'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** What the operator is told each kind is. */
export const ALERT_LABELS: Readonly<Record<AlertKind, string>> = {
  red: 'router red (offline or silent)',
  'session-gap': 'a session message lost in a gap',
  'damaged-tables': 'damaged table(s)',
  'journal-failing': 'journal failing',
  'config-problems': 'config problem(s)',
};

/** One alert's condition holding now. */
export interface Finding {
  router: string;
  kind: AlertKind;
  detail: string;
}

/** What the last evaluation recorded of one router's condition. */
export interface AlertState {
  router: string;
  kind: string;
  active: boolean;
  detail: string;
}

/** A change to tell: `raised` (it began) or not (it cleared). */
export interface AlertChange {
  router: string;
  kind: AlertKind;
  raised: boolean;
  detail: string;
}

const num = (v: unknown): number => (typeof v === 'number' || typeof v === 'string' ? Number(v) : 0);

/** The conditions that hold for one router now, by the Routers page's own rules. */
export function findings(r: RouterRow, nowMs: number, staleAfterMs: number): Finding[] {
  const out: Finding[] = [];
  const add = (kind: AlertKind, detail: string): void => void out.push({ router: r.router, kind, detail });
  const state = routerState(r, nowMs, staleAfterMs);
  if (state.bad) add('red', state.label);
  if (num(r.missing_session) > 0)
    add('session-gap', `${r.missing_session} session message(s) lost in a gap (payments, starts or ends)`);
  const h = r.health ?? {};
  if (num(h['damaged_tables']) > 0) add('damaged-tables', `${num(h['damaged_tables'])} damaged table(s)`);
  if (typeof h['journal_failing'] === 'string') add('journal-failing', `journal failing: ${h['journal_failing']}`);
  if (num(h['config_problems']) > 0) add('config-problems', `${num(h['config_problems'])} config problem(s)`);
  return out;
}

/**
 * What changed from the recorded states to `now` (every router's findings): a condition that holds and was not
 * active is raised; one that was active and holds no more is cleared (a router gone from the database included).
 */
export function alertChanges(recorded: readonly AlertState[], now: readonly Finding[]): AlertChange[] {
  const key = (router: string, kind: string): string => `${router}\u0000${kind}`;
  const active = new Map(recorded.filter((s) => s.active).map((s) => [key(s.router, s.kind), s]));
  const holding = new Set(now.map((f) => key(f.router, f.kind)));
  const out: AlertChange[] = [];
  for (const f of now) if (!active.has(key(f.router, f.kind))) out.push({ ...f, raised: true });
  for (const [k, s] of active)
    if (!holding.has(k) && (ALERT_KINDS as readonly string[]).includes(s.kind))
      out.push({ router: s.router, kind: s.kind as AlertKind, raised: false, detail: s.detail });
  return out;
}

/** One line for a mail's subject or a log: `cafe-north: router red (offline or silent) — raised`. */
export const alertLine = (c: { router: string; kind: AlertKind; raised: boolean }): string =>
  `${c.router}: ${ALERT_LABELS[c.kind]} (${c.raised ? 'raised' : 'cleared'})`;
