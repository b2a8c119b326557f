/**
 * Revenue charts as plain SVG made on the server: stacked bars per day, one colour per router (or method). No chart
 * library and no script in the page; the numbers the bars are drawn from are the table's, so the chart and the CSV
 * never disagree. Amounts are exact (bigint, smallest unit) in every label, the axis' included: only heights and
 * coordinates use Number() of them, a drawing, not a sum anyone reads.
 */
import { esc } from './html.ts';
import { decimalText, type Unit } from './money.ts';

export interface Series {
  name: string;
  /** One amount per day in the smallest unit, in the days' order. */
  values: readonly bigint[];
}

const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#65a30d', '#db2777', '#475569'];

/** The longest period whose chart draws a bar per day; a longer one draws a bar per month. */
export const CHART_DAILY_MAX = 92;

/**
 * The bars of the period's chart: its days, or for a period of more than CHART_DAILY_MAX days, the first day of each
 * month it touches (its first month's bar begins at `from`): a year is 13 bars, not 365 of a pixel each.
 */
export function chartBars(from: string, to: string): string[] {
  const days: string[] = [];
  for (let d = Date.parse(`${from}T00:00:00Z`); d < Date.parse(`${to}T00:00:00Z`); d += 86_400_000)
    days.push(new Date(d).toISOString().slice(0, 10));
  if (days.length <= CHART_DAILY_MAX) return days;
  return days.filter((d, i) => i === 0 || d.endsWith('-01'));
}

/** A round step for the y axis near max/4, in the smallest unit (exact: its labels are money). */
function niceStep(max: bigint, scale: bigint): bigint {
  if (max <= 0n) return scale;
  const quarter = max / 4n;
  const p = quarter < 1n ? 1n : 10n ** BigInt(String(quarter).length - 1);
  return (max <= 4n * p ? 1n : max <= 8n * p ? 2n : max <= 20n * p ? 5n : 10n) * p;
}

/** n to one decimal, as toFixed(1) writes it but without its cost (a chart's thousands of coordinates). */
function tenths(n: number): string {
  const t = Math.round(n * 10);
  const whole = Math.trunc(t / 10);
  const frac = Math.abs(t % 10);
  return `${t < 0 && whole === 0 ? '-' : ''}${whole}.${frac}`;
}

/**
 * An axis value (smallest unit) in the asset's unit, exact, thousands and up shortened: 0.000000005, 2,500, 15k, 1.5M.
 */
function axisText(v: bigint, decimals: number): string {
  const unit = 10n ** BigInt(decimals);
  for (const [power, suffix] of [
    [9, 'G'],
    [6, 'M'],
  ] as const)
    if (v >= unit * 10n ** BigInt(power)) return decimalText(String(v), decimals + power) + suffix;
  return v >= unit * 10_000n ? decimalText(String(v), decimals + 3) + 'k' : decimalText(String(v), decimals);
}

/** The asset a chart draws: its unit (the axis counts in it, labels say "30.25 USDC"), or null: not known. */
export interface ChartAsset {
  unit: Unit | null;
  /** Its name for labels where the unit is not known ("2100 sat (smallest unit)"). */
  label: string;
}

export function stackedBars(
  title: string,
  days: readonly string[],
  series: readonly Series[],
  { unit, label: assetLabel }: ChartAsset,
  per: 'day' | 'month' = 'day',
): string {
  const decimals = unit?.decimals ?? 0;
  const label = (v: bigint): string =>
    unit === null
      ? `${decimalText(String(v), 0)} ${assetLabel} (smallest unit)`
      : `${decimalText(String(v), unit.decimals)} ${unit.name}`;
  const width = 720;
  const height = 240;
  const left = 56;
  const bottom = 36;
  const top = 12;
  const plotH = height - top - bottom;
  const plotW = width - left - 8;
  // The axis in bigint (its labels are amounts); only the drawing is in Number, in the smallest unit.
  let max = 0n;
  for (let i = 0; i < days.length; i++) {
    let total = 0n;
    for (const s of series) total += (s.values[i] ?? 0n) > 0n ? s.values[i]! : 0n;
    if (total > max) max = total;
  }
  const step = niceStep(max, 10n ** BigInt(decimals));
  const yMax = max <= step ? step : ((max + step - 1n) / step) * step;
  const yMaxDrawn = Number(yMax);
  const y = (v: number): number => top + plotH - (v / yMaxDrawn) * plotH;
  const slot = plotW / Math.max(1, days.length);
  const bar = Math.max(2, Math.min(40, slot * 0.7));
  const parts: string[] = [];
  for (let v = 0n; v <= yMax; v += step) {
    const at = y(Number(v));
    parts.push(
      `<line x1="${left}" x2="${width - 8}" y1="${tenths(at)}" y2="${tenths(at)}" class="grid"/>`,
      `<text x="${left - 6}" y="${tenths(at + 4)}" text-anchor="end">${axisText(v, decimals)}</text>`,
    );
  }
  const labelEvery = Math.ceil(days.length / 10);
  // A year is ~3,300 bars per chart: what is the same for a day's bars or a series' is made once.
  const width1 = `" width="${tenths(bar)}" height="`;
  const fills = series.map((_, k) => `" fill="${PALETTE[k % PALETTE.length]}"><title>`);
  const names = series.map((s) => esc(s.name));
  days.forEach((day, i) => {
    const x = left + i * slot + (slot - bar) / 2;
    const at = `<rect x="${tenths(x)}" y="`;
    const dayText = esc(per === 'day' ? day : day.slice(0, 7));
    let base = 0;
    series.forEach((s, k) => {
      const exact = s.values[i] ?? 0n;
      if (exact <= 0n) return;
      const v = Number(exact);
      const h = (v / yMaxDrawn) * plotH;
      parts.push(
        at + tenths(y(base) - h) + width1 + tenths(h) + fills[k] + dayText + ' ' + names[k] + ': ' + esc(label(exact)),
        '</title></rect>',
      );
      base += v;
    });
    if (i % labelEvery === 0)
      parts.push(
        `<text x="${tenths(x + bar / 2)}" y="${height - bottom + 16}" text-anchor="middle">` +
          `${esc(per === 'day' ? day.slice(5) : day.slice(0, 7))}</text>`,
      );
  });
  const legend = series
    .map((s, k) => `<span class="key"><i style="background:${PALETTE[k % PALETTE.length]}"></i>${esc(s.name)}</span>`)
    .join(' ');
  return (
    `<figure class="chart"><figcaption>${esc(title)}</figcaption>` +
    `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg>` +
    `<div class="legend">${legend}</div></figure>`
  );
}
