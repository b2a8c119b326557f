/**
 * What RADIUS accounting keeps of each live session across a restart (`<radius dir>/sessions.json`), a table on
 * storage/json-table.ts: its user, address and start, its Interim interval and Class attributes (from the voucher's
 * Access-Accept), and the bytes counted so far each way — how the next Interim and the Stop split sluice's own total.
 * Written a minute after a session is tracked or let go, octets alone once an hour, and at close (accounting.ts: a
 * crash loses at most an hour of the split, never the total, which is the session journal's).
 *
 * Format: `{"<session id>": {"user", "mac", "ip", "startedAt", "interimMs", "classes", "up", "down"}, …}`, octets as
 * decimal strings. A damaged file is refused like every table (ERR_RADIUS_STATE): accounting does not start, the damage
 * counted and kept aside, since reading it as empty would track sessions from zero and never stop the lost ones.
 */
import { join } from 'node:path';
import { JsonTable, type JsonTableFormat } from '../../storage/index.ts';

export const TRACKED_STATE_FILE = 'sessions.json';

export interface TrackedState {
  id: string;
  user: string;
  mac: string;
  ip: string | null;
  startedAt: number;
  /** null = radius.interim_interval. */
  interimMs: number | null;
  classes: string[];
  /** Bytes from the client (upload) and to it (download). */
  up: bigint;
  down: bigint;
}

const DECIMAL = /^[0-9]+$/;

const FORMAT: JsonTableFormat<TrackedState> = {
  code: 'ERR_RADIUS_STATE',
  what: 'the RADIUS accounting session state',
  key: (t) => t.id,
  split(json) {
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw new TypeError('not an object of sessions');
    return { rows: Object.entries(json), extra: undefined };
  },
  row(value) {
    const [id, v] = value as [string, Record<string, unknown> | null];
    if (
      typeof v !== 'object' ||
      v === null ||
      typeof v.user !== 'string' ||
      typeof v.mac !== 'string' ||
      (v.ip !== null && typeof v.ip !== 'string') ||
      typeof v.startedAt !== 'number' ||
      !Number.isFinite(v.startedAt) ||
      (v.interimMs !== null && typeof v.interimMs !== 'number') ||
      !Array.isArray(v.classes) ||
      !v.classes.every((c) => typeof c === 'string') ||
      typeof v.up !== 'string' ||
      !DECIMAL.test(v.up) ||
      typeof v.down !== 'string' ||
      !DECIMAL.test(v.down)
    ) {
      throw new TypeError(`session ${id} is damaged: ${JSON.stringify(v)?.slice(0, 200)}`);
    }
    return {
      id,
      user: v.user,
      mac: v.mac,
      ip: v.ip as string | null,
      startedAt: v.startedAt,
      interimMs: v.interimMs as number | null,
      classes: v.classes as string[],
      up: BigInt(v.up),
      down: BigInt(v.down),
    };
  },
  join: (rows) =>
    Object.fromEntries(
      rows.map((t) => [
        t.id,
        {
          user: t.user,
          mac: t.mac,
          ip: t.ip,
          startedAt: t.startedAt,
          interimMs: t.interimMs,
          classes: t.classes,
          up: t.up.toString(),
          down: t.down.toString(),
        },
      ]),
    ),
  empty: () => undefined,
};

/** Reads `<dir>/sessions.json` (absent: nothing tracked); a damaged one throws ERR_RADIUS_STATE (details.damaged). */
export function openTrackedState(
  dir: string,
  { atStart = false }: { atStart?: boolean } = {},
): Promise<JsonTable<TrackedState>> {
  return JsonTable.open(join(dir, TRACKED_STATE_FILE), FORMAT, { atStart });
}
