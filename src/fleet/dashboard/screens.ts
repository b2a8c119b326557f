/**
 * The dashboard's screens: each builds its Page from the database for one login and request, and the same build
 * serves the page and the CSV of any of its tables (`<path>.csv?table=<id>&<the same query>`).
 */
import type { Sql } from '../db/index.ts';
import { InputError, type Login } from './auth.ts';
import { chartBars, stackedBars } from './charts.ts';
import { errorBox, grantForm, okBox, sessionActions, type Page } from './pages.ts';
import { pageAsk, paging, type PageAsk } from './paging.ts';
import { assetName } from './money.ts';
import * as store from './store.ts';
import type { Table } from './table.ts';
import { zoneDay, zoneTime } from './zone.ts';
import {
  ago,
  auditTable,
  daysBetween,
  gapsTable,
  hoursTable,
  revenueSeries,
  revenueTable,
  routersTable,
  routerState,
  sessionsTable,
  totalsTable,
} from './views.ts';

export interface ScreenContext {
  db: Sql;
  login: Login;
  query: URLSearchParams;
  now: number;
  staleAfterMs: number;
  /** The time zone the page's days, hours and times are in (the user's own, or the fleet's). */
  zone: string;
  /** Whether actions can be sent to this router (its command key is known). */
  canAct: (router: string) => boolean;
  /** Has the zone's offsets' days kept and filled in the background (offset-fill.ts). */
  keepZone?: (zone: string) => void;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const MAX_DAYS = 400;

function day(query: URLSearchParams, name: string, fallback: string): string {
  const v = query.get(name);
  if (v === null || v === '') return fallback;
  if (!DAY.test(v)) throw new InputError(`${name} must be a date YYYY-MM-DD (got ${JSON.stringify(v)})`);
  // Date.parse takes 2026-02-30 for 2 March: only a date that reads back the same is one.
  const ms = Date.parse(`${v}T00:00:00Z`);
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== v)
    throw new InputError(`${name}: ${v} is no day of the calendar`);
  return v;
}

const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
const DAY_MS = 86_400_000;

export async function revenueScreen(c: ScreenContext): Promise<Page> {
  // Today is the zone's: in Berlin after midnight, tomorrow's UTC date already.
  const today = Date.parse(`${zoneDay(c.now, c.zone)}T00:00:00Z`);
  const to = day(c.query, 'to', iso(today + DAY_MS));
  const from = day(c.query, 'from', iso(Date.parse(`${to}T00:00:00Z`) - 14 * DAY_MS));
  const by = c.query.get('by') ?? 'router';
  if (by !== 'router' && by !== 'method') throw new InputError('by must be router or method');
  const days = daysBetween(from, to);
  if (days.length === 0) throw new InputError('from must be before to');
  if (days.length > MAX_DAYS) throw new InputError(`a period is at most ${MAX_DAYS} days`);
  const asks = {
    revenue: pageAsk(c.query, 'revenue'),
    router: pageAsk(c.query, 'by-router'),
    method: pageAsk(c.query, 'by-method'),
  };
  const period = { from, to, zone: c.zone };
  const hoursAsk = pageAsk(c.query, 'hours');
  // The tables and chart from one read of the period's days; its hours and the units beside it, at once.
  const [{ detail, perRouter, perMethod, chart, filling }, hours, units] = await Promise.all([
    store.revenuePage(c.db, period, by, asks),
    days.length === 1 ? store.revenueHours(c.db, period, hoursAsk) : null,
    store.units(c.db),
  ]);
  const form =
    '<form method="get" action="/revenue">' +
    `<label>from <input type="date" name="from" value="${from}"></label> ` +
    `<label>to (excluded) <input type="date" name="to" value="${to}"></label> ` +
    `<label>per <select name="by"><option${by === 'router' ? ' selected' : ''}>router</option>` +
    `<option${by === 'method' ? ' selected' : ''}>method</option></select></label> <button>Show</button></form>`;
  const bars = chartBars(from, to);
  const per = bars.length === days.length ? 'day' : 'month';
  const charts = [...revenueSeries(chart, bars)].map(([asset, series]) => {
    const unit = units.get(asset) ?? null;
    const named = assetName(asset, units);
    const title =
      `Revenue per ${per} (${c.zone}) and ${by}, ${named}` +
      (unit === null ? ' (smallest unit: decimals not known)' : '');
    return stackedBars(title, bars, series, { unit, label: named }, per);
  });
  // Days the background fill has not reached yet are summed from the quarter hours: exact, slower.
  if (filling.length > 0) c.keepZone?.(c.zone);
  const note =
    filling.length === 0
      ? []
      : [
          `<p class="note">The days of ${escText(c.zone)} (UTC${filling.map(offsetName).join(', UTC')}) are still ` +
            'being summed up in the background: this period is read from the quarter hours meanwhile (exact, ' +
            'slower).</p>',
        ];
  return {
    title: `Revenue ${from} to ${to}`,
    sections: [
      form,
      ...note,
      charts.length === 0 ? '<p class="note">No payments in this period.</p>' : charts.join(''),
      withPaging(totalsTable(perRouter.rows, 'router', units), asks.router, perRouter.total),
      withPaging(totalsTable(perMethod.rows, 'method', units), asks.method, perMethod.total),
      withPaging(revenueTable(detail.rows, units, c.zone), asks.revenue, detail.total),
      hours === null
        ? `<p class="note">Its hours: choose one day (to = the day after from).</p>`
        : withPaging(hoursTable(hours.rows, units, c.zone), hoursAsk, hours.total),
    ],
  };
}

export async function routersScreen(c: ScreenContext): Promise<Page> {
  const ask = pageAsk(c.query, 'routers');
  const { rows, total } = await store.routers(c.db, ask);
  return {
    title: "Routers' health",
    refreshS: 15,
    sections: [
      `<p class="note">Red: offline (a clean stop, or the Last-Will the broker sent when the connection was lost) or ` +
        `nothing heard for more than ${Math.round(c.staleAfterMs / 1000)} s. Amber: a problem inside a router that ` +
        `still reports. Now: ${zoneTime(c.now, c.zone)} ${escText(c.zone)}.</p>`,
      withPaging(routersTable(rows, c.now, c.staleAfterMs, c.zone), ask, total),
      '<p>' +
        rows.map((r) => `<a href="/routers/${encodeURIComponent(r.router)}">${escText(r.router)}</a>`).join(' · ') +
        '</p>',
    ],
  };
}

/** Minutes east of UTC as an offset: +02:00, -03:30. */
const offsetName = (m: number): string => {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${m < 0 ? '-' : '+'}${two(Math.floor(Math.abs(m) / 60))}:${two(Math.abs(m) % 60)}`;
};

const escText = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** What a router may be named (the collector's own rule): anything else is no router's page. */
const ROUTER_ID = /^[A-Za-z0-9._-]{1,64}$/;

export async function routerScreen(c: ScreenContext, name: string): Promise<Page> {
  if (!ROUTER_ID.test(name))
    throw new NotFound(`no router is named ${JSON.stringify(name)}: a router id is 1 to 64 of A-Z a-z 0-9 . _ -`);
  const r = await store.router(c.db, name);
  if (r === null) throw new NotFound(`no router ${JSON.stringify(name)} has reported`);
  const state = routerState(r, c.now, c.staleAfterMs);
  const sessionsAsk = pageAsk(c.query, 'sessions');
  const live = await store.liveSessions(c.db, name, sessionsAsk);
  const sessions = withPaging(sessionsTable(live.rows, c.zone), sessionsAsk, live.total);
  const gapsAsk = pageAsk(c.query, 'gaps', 50);
  const auditAsk = pageAsk(c.query, 'audit', 20);
  const gaps = await store.gaps(c.db, name, gapsAsk);
  const audits = await store.audit(c.db, name, auditAsk);
  const macs = sessions.rows.map((row) => row[0]!);
  const admin = c.login.role === 'admin';
  const acts = admin && c.canAct(name);
  const notes: string[] = [];
  const done = c.query.get('action');
  if (done !== null) {
    const a = await store.action(c.db, done);
    if (a !== null && a.router === name) {
      const what = `${a.command} ${JSON.stringify(a.args)}`;
      notes.push(
        a.ok === true
          ? okBox(`${what}: the router did it.`)
          : a.ok === false
            ? errorBox(
                `${what}: the router refused: ${JSON.stringify((a.reply as { error?: unknown })?.error ?? a.reply)}`,
              )
            : errorBox(
                `${what}: sent, no answer yet (the router may be offline; it refuses the command once it is ` +
                  'older than its mqtt.command_window).',
              ),
      );
    }
  }
  const err = c.query.get('error');
  if (err !== null) notes.push(errorBox(err));
  if (!admin) notes.push('<p class="note">Read-only: your role (operator) sees, and cannot act.</p>');
  else if (!acts) notes.push(`<p class="note">No command key for ${escText(name)}: actions on it are off.</p>`);
  const heard = r.last_message_ms === null ? 'never' : `${ago(c.now - r.last_message_ms)} ago`;
  return {
    title: `Router ${name}`,
    refreshS: done === null && err === null ? 15 : undefined,
    sections: [
      ...notes,
      `<p class="state ${state.bad ? 'bad' : 'good'}"><strong>${escText(state.label)}</strong> · ` +
        `last heard ${heard} · ` +
        `version ${escText(r.version ?? '?')} · ${r.sessions} live sessions, ${r.clients} clients</p>`,
      routersTable([r], c.now, c.staleAfterMs, c.zone),
      acts
        ? { ...sessions, actions: { label: 'actions', cell: (i) => sessionActions(name, macs[i]!, c.login.csrf) } }
        : sessions,
      ...(acts ? [grantForm(name, c.login.csrf)] : []),
      withPaging(gapsTable(gaps.rows, c.zone), gapsAsk, gaps.total),
      withPaging(auditTable(audits.rows, c.zone), auditAsk, audits.total),
    ],
  };
}

export async function gapsScreen(c: ScreenContext): Promise<Page> {
  const ask = pageAsk(c.query, 'gaps');
  const gaps = await store.gaps(c.db, null, ask);
  return {
    title: 'Sequence gaps',
    sections: [
      '<p class="note">Each router numbers its usage and session messages 1, 2, 3… A hole is a message that never ' +
        'reached the database, shown here as it is, never filled in. Every message says which number the ' +
        "router's session message before it had, so the message after a hole tells what it held: usage reports " +
        'only (kept in RAM on the router and lost by its crash, power cut or full queue: droppable, not money, the ' +
        'next report carries the totals again), or a session message (a payment, a start or an end: never ' +
        'droppable, red). A router that does not say leaves it unknown.</p>',
      withPaging(gapsTable(gaps.rows, c.zone), ask, gaps.total),
    ],
  };
}

export async function auditScreen(c: ScreenContext): Promise<Page> {
  const ask = pageAsk(c.query, 'audit');
  const audits = await store.audit(c.db, null, ask);
  return {
    title: 'Audit of operator actions',
    sections: [withPaging(auditTable(audits.rows, c.zone), ask, audits.total)],
  };
}

export class NotFound extends Error {}

const withPaging = (t: Table, ask: PageAsk, total: string): Table => ({ ...t, paging: paging(ask, total) });

export function csvHref(path: string, query: URLSearchParams, table: string): string {
  const q = new URLSearchParams(query);
  q.delete('action');
  q.delete('error');
  q.set('table', table);
  return `${path}.csv?${q.toString()}`;
}

/** The same page with another page of table `table`. */
export function pageHref(path: string, query: URLSearchParams, table: string, page: number): string {
  const q = new URLSearchParams(query);
  q.delete('action');
  q.delete('error');
  if (page === 1) q.delete(`${table}_page`);
  else q.set(`${table}_page`, String(page));
  const text = q.toString();
  return text === '' ? path : `${path}?${text}`;
}

/** The table `id` of a page, for its CSV. */
export function tableOf(page: Page, id: string | null): Table {
  const t = page.sections.find((s): s is Table => typeof s !== 'string' && s.id === id);
  if (t === undefined) throw new InputError(`no table ${JSON.stringify(id)} on this page`);
  return t;
}
