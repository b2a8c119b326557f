/**
 * The demo's closing summary: what the run measured (ticks, gate opens, the overshoot of each cut session) as text,
 * beside the goals and what a real portal and router add, as measured in the labs. Pure: the run collects, this tells.
 */
import { formatAmount, type ViewSession, type ViewTotals } from './view.ts';

/** The demo's poll interval (its config's main.poll_interval): the summary states the tick goals against it. */
export const POLL_S = 1;

/** A deauth the simulated portal served for an authenticated client: its counters (bytes since auth) at that moment. */
export interface Deauth {
  mac: string;
  atMs: number;
  bytes: number;
  lastSecondBps: number;
}

export interface Figures {
  /** ms between the starts of consecutive ticks, and each tick's duration. */
  tickGaps: number[];
  tickMs: number[];
  /** ms from a purchase call to its reply with the gate open (the reply waits for the gate, bounded). */
  gateMs: number[];
  /** Purchases answered before their gate opened ("opening" or "pending"). */
  gateLate: number;
  lastTickStart: number | undefined;
}

function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Bytes as KiB/MiB, negative when the cut came before the allotment was used up. */
const signedAmount = (n: number): string => (n < 0 ? `-${formatAmount('bytes', -n)}` : formatAmount('bytes', n));

const ms = (v: number): string => (Number.isNaN(v) ? 'n/a' : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);

/** What the run measured, as the lines printed when it ends: the figures against their goals and what a router adds. */
export function summary(
  sessions: Map<string, ViewSession>,
  totals: ViewTotals,
  figures: Figures,
  deauths: readonly Deauth[],
  elapsedS: number,
): string {
  const all = [...sessions.values()];
  const cut = all.filter((s) => s.endCause === 'data-limit');
  // Overshoot of a cut session: what passed its gate beyond the allotment, read from the portal's counters when the
  // deauth arrived (the first deauth of that MAC after the session started; the demo's purchases auth a fresh client,
  // whose counters start at 0); also as seconds of that client's own traffic and against the goal rate × (poll_interval
  // + 0.5 s), its rate being the higher of its average over the session and its rate in the last second before the cut
  // (a simulated burst multiplies its rate for a few seconds). The usage the meter counted beyond it is reported
  // next to it: counted, not charged (a demo purchase pays for its allotment up front).
  const over = cut.map((s) => {
    const d = deauths.find((x) => x.mac === s.mac && x.atMs >= s.startedMs);
    const passed = d?.bytes ?? s.used;
    const seconds = Math.max(0.001, ((d?.atMs ?? s.endedMs ?? performance.now()) - s.startedMs) / 1000);
    // The higher of its average over the session and its rate in the last second before the cut (a burst).
    const rate = Math.max(passed / seconds, d?.lastSecondBps ?? 0);
    const bytes = passed - s.allotment;
    return {
      bytes,
      billed: s.used - s.allotment,
      seconds: rate > 0 ? bytes / rate : 0,
      withinGoal: bytes <= rate * (POLL_S + 0.5),
    };
  });
  const ended =
    Object.entries(totals.ended)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ') || 'none';
  const gaps = figures.tickGaps;
  const overLine = overshootLine(over);
  return [
    '',
    `sluice demo summary (${elapsedS.toFixed(1)} s, ${totals.clients} clients, poll_interval ${POLL_S} s)`,
    `  purchases ${totals.purchases}, top-ups ${totals.topups}, admin terminates ${totals.terminates}, ` +
      `refused ${totals.rejected}`,
    `  sessions ${all.length}: still active ${all.filter((s) => s.state === 'ACTIVE').length}; ended: ${ended}`,
    // More ticks than seconds is by design: the meter reads again early as a session nears its allotment (cut at the
    // crossing), so the gap's median is short; the goal is about its maximum (no reading later than 1.5 × poll).
    `  ticks ${figures.tickMs.length} (every ${POLL_S} s, and early readings as sessions near their allotment): ` +
      `gap p50 ${ms(percentile(gaps, 0.5))}, p99 ${ms(percentile(gaps, 0.99))}, ` +
      `max ${ms(gaps.length ? Math.max(...gaps) : NaN)} ` +
      `(goal ≤ ${ms(1500 * POLL_S)}); each took p50 ${ms(percentile(figures.tickMs, 0.5))}, ` +
      `p99 ${ms(percentile(figures.tickMs, 0.99))}`,
    // The figures are sluice's own, on the path that lists the portal every tick (the demo has no nft): say what a
    // router pays on that path and on the default one, the kernel's counters, as measured in the openNDS lab.
    '    (the simulated portal answers at once and is listed every tick; a real openNDS 9.10 spends ≈ 22 ms of ' +
      'CPU per listed client per listing, 193 ms a second for 32 clients;',
    "     a router with main.kernel_quota reads the kernel's counters instead and lists openNDS only when " +
      'something changed: with 32 clients while customers come and go (5 purchases and 2 sessions ending in ' +
      "45 s), 40.4-49.2 ms a second on openNDS 9.10 and 48.2-52.7 on 10.3.1 with the package's binauth: over " +
      "the goal of 40, most of it openNDS's own work for the auths and deauths (57-62 at 64): docs/performance.md;",
    // Measured in busy windows (bench portal-cpu): sluice with a 128 MB router's conntrack table, the portals earlier.
    "     with main.portal 'sluice' (sluice is the gate, no portal process) the same busy window cost the router " +
      '10.7-14.7 ms a second at 8-64 clients (12.7 at 32, under the goal of 15; quiet, load 0.4-1.3) against ' +
      '36.2-72.9 on openNDS 9.10 + sluice and 63.1-90.2 on 10.3.1 + sluice in the same run)',
    `  gate open after a purchase: p50 ${ms(percentile(figures.gateMs, 0.5))}, ` +
      `p99 ${ms(percentile(figures.gateMs, 0.99))} ` +
      `(${figures.gateMs.length} open at the reply, ${figures.gateLate} later)`,
    // The stand-in authenticates at once: say what a real portal's auth adds, as measured in the openNDS lab.
    "    (sluice's part; with 32 clients listed, p99 one at a time and of 32 at once, a fresh daemon's first " +
      "burst, the gate as the kernel opened it: main.portal 'sluice' 32 ms and 42 ms in the latest quiet runs: " +
      'the goal of 50 ms is met one at a time and 32 at once; its replies 45 ms and 68 ms; a real ' +
      'openNDS 9.10 234 ms ' +
      'and 6.3 s, 10.3.1 359 ms and 53 s in the same side-by-side run, ' +
      'which serve auths one at a time: docs/performance.md)',
    `  data sessions cut at their allotment: ${cut.length}; ${overLine}`,
    // The demo's portal is simulated: no kernel to brake in. On a router the kernel quota does (docs/operations.md).
    ...(cut.length > 0
      ? [
          '    (cut by readings alone; on a router main.kernel_quota also stops each client in the kernel at ' +
            'its allotment)',
        ]
      : []),
    // The demo runs the daemon in its own process, beside the simulated portal, its traffic and this view.
    `  metered ${formatAmount('bytes', totals.meteredBytes)}, RSS ${totals.rssMb.toFixed(0)} MB ` +
      `with ${totals.clients} clients under way (the daemon, the simulated portal and this view in one process; ` +
      'the daemon alone, idle as a router starts: ≈ 50.9 MB, over the goal of 50, docs/performance.md)',
    '',
  ].join('\n');
}
/** The cut sessions' overshoot: what passed beyond the allotment, as bytes and as seconds of the client's traffic. */
function overshootLine(
  over: ReadonlyArray<{ bytes: number; billed: number; seconds: number; withinGoal: boolean }>,
): string {
  return over.length === 0
    ? 'none this run'
    : `passed beyond the allotment p50 ${signedAmount(
        percentile(
          over.map((o) => o.bytes),
          0.5,
        ),
      )} ` +
        `(${percentile(
          over.map((o) => o.seconds),
          0.5,
        ).toFixed(2)} s of its traffic), ` +
        `max ${signedAmount(Math.max(...over.map((o) => o.bytes)))} ` +
        `(${Math.max(...over.map((o) => o.seconds)).toFixed(2)} s); ` +
        `within rate × (poll + 0.5 s): ${over.filter((o) => o.withinGoal).length} of ${over.length}; ` +
        `usage counted beyond it (not charged: a purchase paid for its allotment) p50 ${signedAmount(
          percentile(
            over.map((o) => o.billed),
            0.5,
          ),
        )}, max ${signedAmount(Math.max(...over.map((o) => o.billed)))}`;
}
