/**
 * The demo's live terminal view, built from what any ubus listener sees (`sluice.session` events) plus the daemon's
 * stats: pure functions from state to text, so the headless mode and tests can use the same state.
 */
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
   * Bytes/s over the last ~2 s of usage events (data and time sessions alike). Over one tick (tens of ms while data
   * sessions near their end) the portal's 1 KiB counters make the rate jump and give many clients the same value.
   */
  rateBps: number;
  /** [performance.now(), bytes billed so far] at the usage events in that window, oldest first. */
  usageSamples?: Array<[number, number]>;
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

export function formatAmount(metric: 'bytes' | 'seconds', n: number): string {
  if (metric === 'seconds') return n >= 60 ? `${Math.floor(n / 60)}m${String(Math.round(n % 60)).padStart(2, '0')}s` : `${Math.round(n)}s`;
  return n >= MiB ? `${(n / MiB).toFixed(1)}MiB` : `${Math.round(n / 1024)}KiB`;
}

export function bar(fraction: number, width: number): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}

function sessionLine(s: ViewSession, now: number): string {
  const liveTime = s.metric === 'seconds' && s.expiresAt !== null && s.state === 'ACTIVE';
  const left = liveTime ? Math.max(0, (s.expiresAt! - now) / 1000) : s.remaining;
  // Time runs between events: derive the used part from the deadline so used + left = allotment.
  const used = liveTime ? Math.max(0, s.allotment - left) : s.used;
  const usedFraction = s.allotment > 0 ? used / s.allotment : 0;
  const kind = s.metric === 'bytes' ? 'data' : 'time';
  const status = s.state === 'ACTIVE' ? `${formatAmount(s.metric, left)} left` : `${s.state.toLowerCase()} (${s.endCause})`;
  const topup = s.topups > 0 ? ` +${s.topups}` : '';
  const rate = s.state === 'ACTIVE' ? `${formatAmount('bytes', s.rateBps)}/s` : '';
  return `${s.mac} ${kind} ${bar(usedFraction, 20)} ${formatAmount(s.metric, used).padStart(8)} / ${formatAmount(s.metric, s.allotment).padEnd(8)} ${rate.padStart(10)}  ${status}${topup}`;
}

export function renderView(sessions: Iterable<ViewSession>, totals: ViewTotals, opts: { now: number; rows: number; elapsedS: number; totalS: number }): string {
  const all = [...sessions];
  // The busiest first: what a newcomer wants to watch is the meter keeping up with the fastest clients.
  const active = all.filter((s) => s.state === 'ACTIVE').sort((a, b) => b.rateBps - a.rateBps);
  const ended = all.filter((s) => s.state !== 'ACTIVE').sort((a, b) => (b.endedAt ?? 0) - (a.endedAt ?? 0));
  const endedText = Object.entries(totals.ended).map(([cause, n]) => `${cause} ${n}`).join(', ') || 'none yet';
  const lines = [
    `sluice demo: ${totals.clients} clients on a simulated openNDS · ${Math.floor(opts.elapsedS)}/${opts.totalS}s · Ctrl-C to stop`,
    `purchases ${totals.purchases} · top-ups ${totals.topups} · admin terminates ${totals.terminates} · refused ${totals.rejected} · active ${active.length}`,
    `ended: ${endedText}`,
    `meter: ${totals.ticks} ticks, last ${totals.tickMs.toFixed(1)} ms · metered ${formatAmount('bytes', totals.meteredBytes)} · daemon RSS ${totals.rssMb.toFixed(0)} MB`,
    '',
  ];
  const eventRows = Math.min(8, Math.max(3, Math.floor(opts.rows / 4)));
  const sessionRows = Math.max(3, opts.rows - lines.length - eventRows - 3);
  const shown = [...active, ...ended].slice(0, sessionRows);
  lines.push(`${'client'.padEnd(17)} kind ${'used / allotment'.padEnd(20)} ${'used'.padStart(8)} / ${'bought'.padEnd(8)} ${'rate'.padStart(10)}  state`);
  for (const s of shown) lines.push(sessionLine(s, opts.now));
  if (all.length > shown.length) lines.push(`… ${all.length - shown.length} more`);
  lines.push('', 'recent:');
  for (const e of totals.events.slice(-eventRows)) lines.push(`  ${e}`);
  return lines.join('\n');
}
