/**
 * The demo's live terminal view, built from what any ubus listener sees (`sluice.session` events) plus the daemon's
 * stats: pure functions from state to text, so the headless mode and tests can use the same state.
 */
import type { BlobmsgTable } from '../ubus/index.ts';
import { endCauseText } from './explain.ts';

export interface ViewSession {
  id: string;
  mac: string;
  metric: 'bytes' | 'seconds';
  allotment: number;
  used: number;
  remaining: number;
  expiresAt: number | null;
  state: string;
  endCause: string | null;
  topups: number;
  endedAt: number | null;
  /**
   * [Date.now(), bytes both ways billed so far] at its start and at each usage event, oldest first, pruned to the
   * rate window (data and time sessions alike). The rate is taken from these at render time, so it falls to 0 when the
   * client goes quiet: usage events come only when bytes pass.
   */
  usageSamples: Array<[number, number]>;
  /** performance.now() when the demo saw it start / end. */
  startedMs: number;
  endedMs?: number | undefined;
}

export interface ViewTotals {
  clients: number;
  purchases: number;
  topups: number;
  terminates: number;
  rejected: number;
  ended: Record<string, number>;
  tickMs: number;
  ticks: number;
  meteredBytes: number;
  rssMb: number;
  events: string[];
}

const MiB = 1048576;

/** The rate column averages over this window: over one tick (tens of ms while data sessions near their end) the
 * portal's 1 KiB counters make the rate jump and give many clients the same value. */
export const RATE_WINDOW_MS = 2000;

/** Adds a usage event's bytes at `now`, keeping one sample at or before the window's start. */
export function addUsageSample(samples: Array<[number, number]>, now: number, deltaBytes: number): void {
  samples.push([now, samples[samples.length - 1]![1] + deltaBytes]);
  while (samples.length > 2 && now - samples[1]![0] >= RATE_WINDOW_MS) samples.shift();
}

/**
 * Bytes/s over the window ending at `now`: what was billed since its start (the bytes counted up to the window's start
 * are the last sample at or before it), over the window, or over the session's age while it is younger.
 */
export function rateAt(samples: ReadonlyArray<readonly [number, number]>, now: number): number {
  if (samples.length === 0) return 0;
  const from = now - RATE_WINDOW_MS;
  let base = samples[0]!;
  for (const sample of samples) if (sample[0] <= from) base = sample;
  const last = samples[samples.length - 1]!;
  const span = now - Math.max(from, samples[0]![0]);
  return span > 0 ? (Math.max(0, last[1] - base[1]) * 1000) / span : 0;
}

export function formatAmount(metric: 'bytes' | 'seconds', n: number): string {
  if (metric === 'seconds')
    return n >= 60 ? `${Math.floor(n / 60)}m${String(Math.round(n % 60)).padStart(2, '0')}s` : `${Math.round(n)}s`;
  return n >= MiB ? `${(n / MiB).toFixed(1)}MiB` : `${Math.round(n / 1024)}KiB`;
}

export function bar(fraction: number, width: number): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}

function sessionLine(s: ViewSession, now: number, rateBps: number): string {
  const liveTime = s.metric === 'seconds' && s.expiresAt !== null && s.state === 'ACTIVE';
  const left = liveTime ? Math.max(0, (s.expiresAt! - now) / 1000) : s.remaining;
  // Time runs between events: derive the used part from the deadline so used + left = allotment.
  const used = liveTime ? Math.max(0, s.allotment - left) : s.used;
  const usedFraction = s.allotment > 0 ? used / s.allotment : 0;
  const kind = s.metric === 'bytes' ? 'data' : 'time';
  const status =
    s.state === 'ACTIVE' ? `${formatAmount(s.metric, left)} left` : `${s.state.toLowerCase()} (${s.endCause})`;
  const topup = s.topups > 0 ? ` +${s.topups}` : '';
  const rate = s.state === 'ACTIVE' ? `${formatAmount('bytes', rateBps)}/s` : '';
  return (
    `${s.mac} ${kind} ${bar(usedFraction, 20)} ${formatAmount(s.metric, used).padStart(8)} ` +
    `/ ${formatAmount(s.metric, s.allotment).padEnd(8)} ${rate.padStart(10)}  ${status}${topup}`
  );
}

/** A line cut to the terminal's width, so that no line wraps and pushes the header off the top. */
const fit = (line: string, columns: number): string => {
  const chars = [...line];
  return chars.length <= columns ? line : `${chars.slice(0, Math.max(0, columns - 1)).join('')}…`;
};

/**
 * The screen: at most `rows` lines of at most `columns` characters, the header first (a taller view scrolls the
 * header away). `now` is Date.now() (deadlines and the rate window).
 */
export function renderView(
  sessions: Iterable<ViewSession>,
  totals: ViewTotals,
  opts: { now: number; rows: number; columns: number; elapsedS: number; totalS: number },
): string {
  const all = [...sessions];
  const rate = new Map(all.map((s) => [s, s.state === 'ACTIVE' ? rateAt(s.usageSamples, opts.now) : 0]));
  // The busiest first: what a newcomer wants to watch is the meter keeping up with the fastest clients. The rate is
  // today's (a quiet client's falls to 0 and sinks), the newest session first among equals.
  const active = all
    .filter((s) => s.state === 'ACTIVE')
    .sort((a, b) => rate.get(b)! - rate.get(a)! || b.startedMs - a.startedMs);
  const ended = all.filter((s) => s.state !== 'ACTIVE').sort((a, b) => (b.endedAt ?? 0) - (a.endedAt ?? 0));
  const endedText =
    Object.entries(totals.ended)
      .map(([cause, n]) => `${cause} ${n}`)
      .join(', ') || 'none yet';
  const header = [
    `sluice demo: ${totals.clients} clients on a simulated openNDS ` +
      `· ${Math.floor(opts.elapsedS)}/${opts.totalS}s · Ctrl-C to stop`,
    `purchases ${totals.purchases} · top-ups ${totals.topups} · admin terminates ${totals.terminates} · ` +
      `refused ${totals.rejected} · active ${active.length}`,
    `ended: ${endedText}`,
    `meter: ${totals.ticks} ticks, last ${totals.tickMs.toFixed(1)} ms · ` +
      `metered ${formatAmount('bytes', totals.meteredBytes)} · process RSS ${totals.rssMb.toFixed(0)} MB`,
    '',
    `${'client'.padEnd(17)} kind ${'progress'.padEnd(20)} ${'used'.padStart(8)} ` +
      `/ ${'bought'.padEnd(8)} ${'rate'.padStart(10)}  state`,
  ];
  const rows = Math.max(12, opts.rows);
  const eventRows = Math.min(8, Math.max(3, Math.floor(rows / 4)));
  // Header, the sessions (and a "… more" line), a blank line, "recent:", the events: exactly `rows` lines at most.
  const sessionRows = Math.max(1, rows - header.length - 1 - 2 - eventRows);
  const shown = [...active, ...ended].slice(0, sessionRows);
  const lines = [...header];
  for (const s of shown) lines.push(sessionLine(s, opts.now, rate.get(s)!));
  if (all.length > shown.length) lines.push(`… ${all.length - shown.length} more`);
  lines.push('', 'recent:');
  for (const e of totals.events.slice(-eventRows)) lines.push(`  ${e}`);
  return lines
    .slice(0, rows)
    .map((l) => fit(l, Math.max(20, opts.columns)))
    .join('\n');
}

/**
 * One `sluice.session` event into the view's state: a usage event updates its sessions' counts, any other sets its
 * session; started, top-up and end events also go to the event lines (`event`) in words.
 */
export function applyEvent(
  data: BlobmsgTable,
  sessions: Map<string, ViewSession>,
  totals: ViewTotals,
  event: (t: string) => void,
): void {
  const kind = data.event;
  if (kind === 'usage') {
    const now = Date.now();
    for (const u of (data.sessions ?? []) as BlobmsgTable[]) {
      const s = sessions.get(u.id as string);
      if (!s) continue;
      s.used = Number(u.used ?? s.used);
      // Bytes both ways for data and time sessions alike: the running sum of the deltas (`used` of a time session is
      // seconds).
      addUsageSample(s.usageSamples, now, Number(u.delta ?? 0));
      s.remaining = Number(u.remaining ?? s.remaining);
      totals.meteredBytes += Number(u.delta ?? 0);
    }
    return;
  }
  const t = data.session as BlobmsgTable | undefined;
  if (!t) return;
  const id = t.id as string;
  const prev = sessions.get(id);
  const s: ViewSession = {
    startedMs: prev?.startedMs ?? performance.now(),
    endedMs: kind === 'ended' ? performance.now() : prev?.endedMs,
    usageSamples: prev?.usageSamples ?? [[Date.now(), 0]],
    id,
    mac: t.mac as string,
    metric: t.metric as 'bytes' | 'seconds',
    allotment: Number(t.allotment),
    used: Number(t.used),
    remaining: Number(t.remaining),
    expiresAt: t.expires_at === null ? null : Number(t.expires_at) * 1000,
    state: t.state as string,
    endCause: (t.end_cause as string | null) ?? null,
    topups: (prev?.topups ?? 0) + (kind === 'topup' ? 1 : 0),
    endedAt: t.ended_at === null ? null : Number(t.ended_at) * 1000,
  };
  sessions.set(id, s);
  if (kind === 'started')
    event(`+ ${s.mac} bought ${formatAmount(s.metric, s.allotment)} of ${s.metric === 'bytes' ? 'data' : 'time'}`);
  if (kind === 'topup') event(`^ ${s.mac} topped up to ${formatAmount(s.metric, s.allotment)}`);
  if (kind === 'ended') {
    totals.ended[s.endCause ?? '?'] = (totals.ended[s.endCause ?? '?'] ?? 0) + 1;
    event(
      `- ${s.mac} ended, ${endCauseText(s.endCause)}; used ${formatAmount(s.metric, s.used)} ` +
        `of ${formatAmount(s.metric, s.allotment)}`,
    );
  }
}
