/**
 * The operator's time zone (docs/fleet.md, "Time zone"): the fleet's (`--time-zone`, default UTC) or a user's own.
 * The database stores and its views keep UTC; a page groups days and hours by the zone in SQL (`AT TIME ZONE`) and
 * shows times in it here (Intl). A name is taken only when both know it, so a day on a page and a time beside it
 * never disagree: Node's Intl (ICU) formats, PostgreSQL's pg_timezone_names groups.
 */
import { SluiceError } from '../../errors.ts';
import type { Sql } from '../db/index.ts';

export const DEFAULT_TIME_ZONE = 'UTC';

export class TimeZoneError extends SluiceError {
  constructor(name: string, why: string) {
    super(
      'ERR_FLEET_TIME_ZONE',
      `${JSON.stringify(name)} is no time zone ${why}: ` +
        'give an IANA name such as Europe/Berlin, America/New_York or UTC',
      { details: { time_zone: name } },
    );
  }
}

const NAME = /^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/;

/** Why Intl (ICU) does not know `name`, or null when it does. Pure: no database. */
export function zoneProblem(name: string): string | null {
  if (!NAME.test(name)) return 'its letters are not a zone name';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return null;
  } catch {
    return "Node's Intl knows";
  }
}

/** `name` when Intl and the database both know it; a TimeZoneError saying which does not. */
export async function checkTimeZone(db: Sql, name: string): Promise<string> {
  const problem = zoneProblem(name);
  if (problem !== null) throw new TimeZoneError(name, problem);
  const [row] = await db.query<{ known: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS known',
    [name],
  );
  if (row?.known !== true) throw new TimeZoneError(name, 'the fleet database knows (pg_timezone_names)');
  return name;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The parts of `ms` on the zone's wall clock. */
function wall(ms: number, zone: string): Record<string, string> {
  let f = formats.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'longOffset',
    });
    formats.set(zone, f);
  }
  return Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
}

/** `YYYY-MM-DD HH:MM:SS` on the zone's clock; '' for null. */
export function zoneTime(ms: number | null, zone: string): string {
  if (ms === null) return '';
  const p = wall(ms, zone);
  return `${p['year']}-${p['month']}-${p['day']} ${p['hour']}:${p['minute']}:${p['second']}`;
}

/** The zone's calendar day of `ms`, YYYY-MM-DD. */
export function zoneDay(ms: number, zone: string): string {
  return zoneTime(ms, zone).slice(0, 10);
}

/** The zone's offset from UTC at `ms`: `+02:00`, `-05:00`, `+05:30` (`+00:00` for UTC). */
export function zoneOffset(ms: number, zone: string): string {
  const name = wall(ms, zone)['timeZoneName'] ?? 'GMT';
  return name === 'GMT' ? '+00:00' : name.slice(3);
}

/** An hour's start on the zone's clock with its offset, so the hour a clock goes back through shows twice, apart. */
export const zoneHour = (ms: number, zone: string): string =>
  `${zoneTime(ms, zone).slice(0, 16)} (${zoneOffset(ms, zone)})`;

/**
 * Whether the zone's offset is a whole number of `minutes` (60: whole hours, 15: quarter hours) all through the days
 * from `from` to `to` (YYYY-MM-DD), read at every UTC midnight and noon: then its days and hours are runs of whole UTC
 * hours, or quarters (Asia/Kolkata's +05:30 is quarters, not hours; every offset a zone uses now is quarters).
 */
export function offsetsOf(minutes: 15 | 60, zone: string, from: string, to: string): boolean {
  const end = Date.parse(`${to}T12:00:00Z`) + 86_400_000;
  for (let t = Date.parse(`${from}T00:00:00Z`) - 86_400_000; t <= end; t += 43_200_000) {
    // An old local mean time has seconds (+00:53:28): no whole number of anything.
    const [h = 0, m = 0, sec = 0] = zoneOffset(t, zone).slice(1).split(':').map(Number);
    if (((h * 60 + m) * 60 + sec) % (minutes * 60) !== 0) return false;
  }
  return true;
}
