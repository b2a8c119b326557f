/**
 * What each page shows, from the database's rows: pure functions (the clock is an argument), so the page, its CSV and
 * the tests read the same tables. A router is red when its last status said offline (a clean stop, or the Last-Will
 * the broker published when its connection was lost) or when nothing came from it for longer than staleAfterMs.
 */
import type { Series } from './charts.ts';
import { money, type Units } from './money.ts';
import { zoneHour, zoneTime } from './zone.ts';
import type { Table } from './table.ts';

export interface RouterRow {
  router: string;
  online: boolean | null;
  status_reason: string | null;
  /** ms since the epoch of the last message accepted from it (any type), null: none yet. */
  last_message_ms: number | null;
  last_report_ms: number | null;
  last_seq: string;
  version: string | null;
  uptime_s: string | null;
  health: Record<string, unknown> | null;
  reported_dropped: string | null;
  reported_expired: string | null;
  sessions: string;
  clients: string;
  /** Sequence numbers missing in its stored series (fleet_gaps) that are not known to be usage reports only. */
  missing: string;
  /** Missing numbers known to be usage reports (droppable: not money). */
  missing_usage: string;
  /** Missing numbers known to hold a session message (a payment, a start, an end): lost, never droppable. */
  missing_session: string;
}

export interface RevenueRow {
  day: string;
  router: string;
  method: string;
  asset: string;
  payments: string;
  amount: string;
}

export interface TotalRow {
  key: string;
  asset: string;
  payments: string;
  amount: string;
}

export interface HourRow {
  /** ms since the epoch of the hour's start. */
  hour_ms: number;
  /** '' for an hour without payments. */
  asset: string;
  payments: string;
  amount: string;
}

export interface ChartRow {
  day: string;
  asset: string;
  /** null: the row sums the series past the chart's few (`others`). */
  key: string | null;
  amount: string;
  others: boolean;
}

export interface SessionRow {
  id: string;
  mac: string;
  ip: string | null;
  user_name: string | null;
  plan: string | null;
  metric: string;
  state: string;
  used: string | null;
  allotment: string | null;
  remaining: string | null;
  started_ms: number | null;
  expires_ms: number | null;
  updated_ms: number | null;
}

export interface GapRow {
  router: string;
  from_seq: string;
  to_seq: string;
  missing: string;
  /** fleet_gaps.kind: usage, session or unknown. */
  kind: string;
  after_ms: number | null;
  before_ms: number | null;
}

export interface AuditRow {
  id: string;
  request_id: string;
  at_ms: number;
  actor: string;
  router: string;
  command: string;
  args: unknown;
  ok: boolean | null;
  answered_ms: number | null;
  reply: unknown;
}

/** A time on the zone's clock (zone.ts): every time a page or CSV shows, labelled with the zone in its column. */
export const time = (ms: number | null, zone: string): string => zoneTime(ms, zone);

export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export interface RouterState {
  state: 'online' | 'silent' | 'offline' | 'never';
  label: string;
  /** Red on the page. */
  bad: boolean;
}

export function routerState(r: RouterRow, nowMs: number, staleAfterMs: number): RouterState {
  if (r.online === false) {
    const why = r.status_reason === 'lost' ? 'connection lost (Last-Will)' : (r.status_reason ?? 'offline');
    return { state: 'offline', label: `offline: ${why}`, bad: true };
  }
  if (r.last_message_ms === null) return { state: 'never', label: 'never heard', bad: true };
  const silent = nowMs - r.last_message_ms;
  if (silent > staleAfterMs) return { state: 'silent', label: `silent for ${ago(silent)}`, bad: true };
  return { state: 'online', label: r.online === true ? 'online' : 'reporting (no status yet)', bad: false };
}

const num = (v: unknown): string => (typeof v === 'number' || typeof v === 'string' ? String(v) : '');

/** What is wrong inside a router that still reports: its journal, its state files, its config, its series. */
export function healthProblems(r: RouterRow): string[] {
  const h = r.health ?? {};
  const out: string[] = [];
  if (typeof h['journal_failing'] === 'string') out.push(`journal failing (${h['journal_failing']})`);
  if (Number(h['damaged_tables'] ?? 0) > 0) out.push(`${num(h['damaged_tables'])} damaged table(s)`);
  if (Number(h['config_problems'] ?? 0) > 0) out.push(`${num(h['config_problems'])} config problem(s)`);
  if (typeof h['metering_problem'] === 'string') out.push(`metering by the portal: ${h['metering_problem']}`);
  if (Number(r.missing_session) > 0) out.push(lostSession(r));
  const unknown = Number(r.missing) - Number(r.missing_session);
  const explained = Number(r.reported_dropped ?? 0) + Number(r.reported_expired ?? 0);
  if (unknown > explained) out.push(`${unknown - explained} message(s) missing unexplained`);
  return out;
}

const lostSession = (r: RouterRow): string =>
  `${r.missing_session} session message(s) lost in a gap (payments, starts or ends: see Gaps)`;

/** What a gap held, in words (fleet_gaps.kind). */
export const GAP_KIND_LABELS: Readonly<Record<string, string>> = {
  usage: 'usage reports only (droppable, not money)',
  session: 'a session message: a payment, start or end lost',
  unknown: 'not known (the router does not say)',
};

export function routersTable(rows: readonly RouterRow[], nowMs: number, staleAfterMs: number, zone: string): Table {
  const states = rows.map((r) => routerState(r, nowMs, staleAfterMs));
  return {
    id: 'routers',
    title: "Routers' health",
    columns: [
      { key: 'router', label: 'router' },
      { key: 'state', label: 'state' },
      { key: 'last_heard', label: `last heard (${zone})` },
      { key: 'last_report', label: `last report (${zone})` },
      { key: 'sessions', label: 'live sessions', numeric: true },
      { key: 'clients', label: 'clients', numeric: true },
      { key: 'meter', label: 'meter tick ms', numeric: true },
      { key: 'rss', label: 'RSS MB', numeric: true },
      { key: 'journal', label: 'journal write failures', numeric: true },
      { key: 'damaged', label: 'damaged tables', numeric: true },
      { key: 'config', label: 'config problems', numeric: true },
      { key: 'missing', label: 'seq missing', numeric: true },
      { key: 'dropped', label: 'dropped by router', numeric: true },
      { key: 'usage_lost', label: 'usage reports lost (droppable)', numeric: true },
      { key: 'version', label: 'version' },
      { key: 'problems', label: 'problems' },
    ],
    rows: rows.map((r, i) => {
      const h = r.health ?? {};
      const dropped =
        r.reported_dropped === null ? '' : String(Number(r.reported_dropped) + Number(r.reported_expired ?? 0));
      return [
        r.router,
        states[i]!.label,
        time(r.last_message_ms, zone),
        time(r.last_report_ms, zone),
        r.sessions,
        r.clients,
        num(h['meter_tick_ms']),
        num(h['rss_mb']),
        num(h['journal_write_failures']),
        num(h['damaged_tables']),
        num(h['config_problems']),
        r.missing,
        dropped,
        r.missing_usage,
        r.version ?? '',
        healthProblems(r).join('; '),
      ];
    }),
    rowClass: rows.map((r, i) =>
      states[i]!.bad || Number(r.missing_session) > 0 ? 'bad' : healthProblems(r).length > 0 ? 'warn' : undefined,
    ),
  };
}

export function revenueTable(rows: readonly RevenueRow[], units: Units, zone: string): Table {
  return {
    id: 'revenue',
    title: 'Revenue per day, router, method and asset',
    columns: [
      { key: 'day', label: `day (${zone})` },
      { key: 'router', label: 'router' },
      { key: 'method', label: 'method' },
      { key: 'asset', label: 'asset' },
      { key: 'payments', label: 'payments', numeric: true },
      { key: 'amount', label: 'amount', numeric: true },
      { key: 'smallest', label: 'amount (smallest unit)', numeric: true },
    ],
    rows: rows.map((r) => [r.day, r.router, r.method, r.asset, r.payments, money(r.amount, r.asset, units), r.amount]),
  };
}

/** The period's totals per `by` and asset, as the database summed them (numeric: exact). */
export function totalsTable(rows: readonly TotalRow[], by: 'router' | 'method', units: Units): Table {
  return {
    id: `by-${by}`,
    title: `Totals per ${by} and asset`,
    columns: [
      { key: by, label: by },
      { key: 'asset', label: 'asset' },
      { key: 'payments', label: 'payments', numeric: true },
      { key: 'amount', label: 'amount', numeric: true },
      { key: 'smallest', label: 'amount (smallest unit)', numeric: true },
    ],
    rows: rows.map((t) => [t.key, t.asset, t.payments, money(t.amount, t.asset, units), t.amount]),
  };
}

/** One day's revenue per hour of the zone and asset: 23 or 25 rows of hours on a day the clock changes. */
export function hoursTable(rows: readonly HourRow[], units: Units, zone: string): Table {
  return {
    id: 'hours',
    title: `Revenue per hour (${zone}) and asset`,
    columns: [
      { key: 'hour', label: `hour (${zone}, offset from UTC)` },
      { key: 'asset', label: 'asset' },
      { key: 'payments', label: 'payments', numeric: true },
      { key: 'amount', label: 'amount', numeric: true },
      { key: 'smallest', label: 'amount (smallest unit)', numeric: true },
    ],
    rows: rows.map((h) => [
      zoneHour(h.hour_ms, zone),
      h.asset,
      h.payments,
      h.asset === '' ? '' : money(h.amount, h.asset, units),
      h.asset === '' ? '' : h.amount,
    ]),
  };
}

/** Every calendar day from `from` up to and not including `to` (YYYY-MM-DD; the days of the page's zone). */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = Date.parse(`${from}T00:00:00Z`); d < Date.parse(`${to}T00:00:00Z`); d += 86_400_000)
    out.push(new Date(d).toISOString().slice(0, 10));
  return out;
}

/** Per asset, one series per router (or method, and `others`) with a value for each bar: what the charts draw. */
export function revenueSeries(rows: readonly ChartRow[], days: readonly string[]): Map<string, Series[]> {
  const index = new Map(days.map((d, i) => [d, i]));
  const perAsset = new Map<string, Map<string, bigint[]>>();
  for (const r of rows) {
    const i = index.get(r.day);
    if (i === undefined) continue;
    const series = perAsset.get(r.asset) ?? new Map<string, bigint[]>();
    perAsset.set(r.asset, series);
    const name = r.others ? OTHERS : (r.key ?? '');
    const values = series.get(name) ?? days.map(() => 0n);
    series.set(name, values);
    values[i]! += BigInt(r.amount);
  }
  const order = (a: string, b: string): number => (a === OTHERS ? 1 : b === OTHERS ? -1 : a.localeCompare(b));
  return new Map(
    [...perAsset].map(([asset, series]) => [
      asset,
      [...series].sort((a, b) => order(a[0], b[0])).map(([name, values]) => ({ name, values })),
    ]),
  );
}

/** The series of every router (or method) past the chart's few. */
const OTHERS = '(others)';

export function sessionsTable(rows: readonly SessionRow[], zone: string): Table {
  return {
    id: 'sessions',
    title: 'Live sessions',
    columns: [
      { key: 'mac', label: 'MAC' },
      { key: 'ip', label: 'IP' },
      { key: 'user', label: 'user' },
      { key: 'plan', label: 'plan' },
      { key: 'metric', label: 'metric' },
      { key: 'state', label: 'state' },
      { key: 'used', label: 'used', numeric: true },
      { key: 'allotment', label: 'allotment', numeric: true },
      { key: 'remaining', label: 'remaining', numeric: true },
      { key: 'started', label: `started (${zone})` },
      { key: 'expires', label: `expires (${zone})` },
      { key: 'updated', label: `as of (${zone})` },
      { key: 'id', label: 'session id' },
    ],
    rows: rows.map((s) => [
      s.mac,
      s.ip ?? '',
      s.user_name ?? '',
      s.plan ?? '',
      s.metric,
      s.state,
      s.used ?? '',
      s.allotment ?? '',
      s.remaining ?? '',
      time(s.started_ms, zone),
      time(s.expires_ms, zone),
      time(s.updated_ms, zone),
      s.id,
    ]),
  };
}

export function gapsTable(rows: readonly GapRow[], zone: string): Table {
  return {
    id: 'gaps',
    title: 'Sequence gaps (messages that never reached the database)',
    columns: [
      { key: 'router', label: 'router' },
      { key: 'from', label: 'from seq', numeric: true },
      { key: 'to', label: 'to seq', numeric: true },
      { key: 'missing', label: 'missing', numeric: true },
      { key: 'after', label: `after (${zone})` },
      { key: 'before', label: `before (${zone})` },
      { key: 'held', label: 'what it held' },
    ],
    rows: rows.map((g) => [
      g.router,
      g.from_seq,
      g.to_seq,
      g.missing,
      time(g.after_ms, zone),
      time(g.before_ms, zone),
      GAP_KIND_LABELS[g.kind] ?? g.kind,
    ]),
    rowClass: rows.map((g) => (g.kind === 'session' ? 'bad' : g.kind === 'usage' ? undefined : 'warn')),
  };
}

const json = (v: unknown): string => (v === null || v === undefined ? '' : JSON.stringify(v));

export function auditTable(rows: readonly AuditRow[], zone: string): Table {
  return {
    id: 'audit',
    title: 'Operator actions',
    columns: [
      { key: 'at', label: `at (${zone})` },
      { key: 'actor', label: 'who' },
      { key: 'router', label: 'router' },
      { key: 'command', label: 'command' },
      { key: 'args', label: 'arguments' },
      { key: 'answer', label: "router's answer" },
      { key: 'answered', label: `answered (${zone})` },
      { key: 'reply', label: 'reply' },
    ],
    rows: rows.map((a) => [
      time(a.at_ms, zone),
      a.actor,
      a.router,
      a.command,
      json(a.args),
      a.ok === null ? 'no answer' : a.ok ? 'ok' : 'refused',
      time(a.answered_ms, zone),
      json(a.reply),
    ]),
    rowClass: rows.map((a) => (a.ok === false ? 'warn' : undefined)),
  };
}
