/**
 * What the journal's and the snapshot's records hold, as JSON objects of the storage layer's CRC-framed JSON-line log
 * (src/storage/json-log.ts). Bigints and usage counters are decimal strings. A decoded record is validated field by
 * field: a line that passes its CRC but not the schema is corrupt too.
 */
import { encodeJsonLine } from '../storage/index.ts';
import type { JsonDecoded } from '../storage/index.ts';
import { END_CAUSES, SESSION_STATES, counterFromBigint } from './model.ts';
import type { EndCause, MeterMark, PaymentRef, Session, SessionRates } from './model.ts';
import type { StoreRecord, UsageEntry } from './store.ts';
import type { Sale } from './sales-book.ts';

/**
 * First line of a snapshot: which journal generation continues it. `headed`: that journal begins with a JournalHeader,
 * so a journal that is missing, empty or without its header lost records (snapshots written before headers existed
 * lack it, and are rewritten at the next start). `body`: the bytes after the header's line, so that a snapshot cut at a
 * line's end is told from a whole one (it is written by rename, never torn; snapshots written before it lack it).
 */
export interface SnapshotHeader {
  t: 'snap';
  v: 1;
  gen: number;
  at: number;
  headed?: true;
  body?: number;
}
/** First line of every journal (sequence number 0): its generation. A journal without it was emptied or cut. */
export interface JournalHeader {
  t: 'jnl';
  v: 1;
  gen: number;
  at: number;
}
/** A payment key kept in a snapshot after its session was dropped by retention. */
export interface RefRecord {
  t: 'ref';
  key: string;
  at: number;
}
/** A snapshot's chunk of the sales book (sales-book.ts): from when it is complete, and its payments, oldest first. */
export interface SalesRecord {
  t: 'sales';
  since: number;
  sales: Sale[];
}
export type JournalLine = StoreRecord | SnapshotHeader | JournalHeader | RefRecord | SalesRecord;
/**
 * A line and its sequence number in its journal (`n`: the header 0, each record one more than the one before), absent
 * in snapshots and in journals written before numbering: replay skips a record whose number it has already passed (a
 * duplicated line applied twice would add a top-up twice).
 */
export interface NumberedLine {
  line: JournalLine;
  n: number | undefined;
}

function paymentToJson(p: PaymentRef): Record<string, unknown> {
  const out: Record<string, unknown> = {
    method: p.method,
    reference: p.reference,
    amount: p.amount.toString(),
    asset: p.asset,
    at: p.at,
  };
  if (p.steps !== undefined) out['steps'] = p.steps.toString();
  return out;
}

function sessionToJson(s: Session): Record<string, unknown> {
  return {
    id: s.id,
    mac: s.mac,
    ip: s.ip,
    user: s.user,
    plan: s.plan,
    metric: s.metric,
    allotment: s.allotment.toString(),
    used: String(s.used),
    bytes: String(s.bytes),
    createdAt: s.createdAt,
    startedAt: s.startedAt,
    expiresAt: s.expiresAt,
    endedAt: s.endedAt,
    state: s.state,
    endCause: s.endCause,
    payments: s.payments.map(paymentToJson),
    ...(s.paymentCount !== undefined && { pc: s.paymentCount }),
    ...(s.paidTotal !== undefined && { paid: s.paidTotal.toString() }),
    ...(s.meterMark && { mark: markToJson(s.meterMark) }),
    ...(s.maxDevices !== undefined && { maxd: s.maxDevices, dev: s.devices ?? [] }),
    ...(s.rates !== undefined && { rt: ratesToJson(s.rates) }),
  };
}

/** [down, up] in bit/s, null for a direction not limited. */
function ratesToJson(r: SessionRates): [number | null, number | null] {
  return [r.downBps, r.upBps];
}

function ratesFromJson(v: unknown): SessionRates {
  const rate = (x: unknown): number | null => {
    if (x === null) return null;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x <= 0) throw new Invalid('bad rate');
    return x;
  };
  if (!Array.isArray(v) || v.length !== 2) throw new Invalid('bad rates');
  return { downBps: rate(v[0]), upBps: rate(v[1]) };
}

function markToJson(m: MeterMark): [number, number, number] {
  return [m.token, m.down, m.up];
}

function markFromJson(v: unknown): MeterMark {
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw new Invalid('bad meter mark');
  return { token: v[0] as number, down: v[1] as number, up: v[2] as number };
}

function toJson(line: JournalLine): unknown {
  switch (line.t) {
    case 'open':
      return { t: 'open', s: sessionToJson(line.session), keys: line.keys };
    case 'topup':
      return {
        t: 'topup',
        id: line.id,
        add: line.add.toString(),
        p: paymentToJson(line.payment),
        keys: line.keys,
        at: line.at,
      };
    case 'limits':
      return {
        t: 'limits',
        id: line.id,
        allot: line.allotment.toString(),
        exp: line.expiresAt,
        at: line.at,
        ...(line.startedAt === undefined ? {} : { st: line.startedAt }),
        ...(line.keys === undefined ? {} : { keys: line.keys }),
      };
    case 'move':
      return { t: 'move', id: line.id, mac: line.mac, at: line.at };
    case 'rates':
      return { t: 'rates', id: line.id, rt: ratesToJson(line.rates), at: line.at };
    case 'end':
      return {
        t: 'end',
        id: line.id,
        state: line.state,
        cause: line.cause,
        at: line.at,
        used: String(line.used),
        bytes: String(line.bytes),
      };
    case 'join':
    case 'leave':
      return { t: line.t, id: line.id, mac: line.mac, at: line.at };
    case 'usage':
      return {
        t: 'usage',
        at: line.at,
        u: line.entries.map(([id, used, bytes, mark]) =>
          mark ? [id, String(used), String(bytes), markToJson(mark)] : [id, String(used), String(bytes)],
        ),
      };
    case 'snap':
      return line;
    case 'jnl':
      return line;
    case 'ref':
      return { t: 'ref', k: line.key, at: line.at };
    case 'sales':
      return { t: 'sales', since: line.since, p: line.sales.map(([at, m, a, n]) => [at, m, a, n.toString()]) };
  }
}

/** One record, framed: `<crc32 hex> <JSON>\n`; `n` is its sequence number in a journal (none in a snapshot). */
export function encodeLine(line: JournalLine, n?: number): string {
  const json = toJson(line) as Record<string, unknown>;
  return encodeJsonLine(JSON.stringify(n === undefined ? json : { ...json, n }));
}

class Invalid extends Error {}

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Invalid('not an object');
  return v as Record<string, unknown>;
}
function str(v: unknown): string {
  if (typeof v !== 'string') throw new Invalid('not a string');
  return v;
}
function strOrNull(v: unknown): string | null {
  return v === null ? null : str(v);
}
function int(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Invalid('not an integer');
  return v;
}
function intOrNull(v: unknown): number | null {
  return v === null ? null : int(v);
}
function big(v: unknown): bigint {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,77})$/.test(v)) throw new Invalid('not a non-negative decimal');
  return BigInt(v);
}
/**
 * A usage counter (`used`, `bytes`): written as a decimal string like every bigint, so journals from before counters
 * were numbers read the same; a value past 2^53 (never reached in practice) saturates at MAX_COUNTER.
 */
function counter(v: unknown): number {
  return counterFromBigint(big(v));
}
function oneOf<T extends string>(v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    throw new Invalid(`not one of ${allowed.join('|')}`);
  return v as T;
}
const NORMAL_MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** A MAC as the manager writes it (lowercase, colon-separated): anything else in a move record is corruption. */
function macOf(v: unknown): string {
  if (typeof v !== 'string' || !NORMAL_MAC.test(v)) throw new Invalid('not a normal MAC');
  return v;
}
function strings(v: unknown): string[] {
  if (!Array.isArray(v)) throw new Invalid('not an array');
  return v.map(str);
}

function paymentFromJson(v: unknown): PaymentRef {
  const o = obj(v);
  const p: PaymentRef = {
    method: str(o['method']),
    reference: str(o['reference']),
    amount: big(o['amount']),
    asset: str(o['asset']),
    at: int(o['at']),
  };
  if (o['steps'] !== undefined) p.steps = big(o['steps']);
  return p;
}

function sessionFromJson(v: unknown): Session {
  const o = obj(v);
  if (!Array.isArray(o['payments'])) throw new Invalid('payments not an array');
  return {
    id: str(o['id']),
    mac: str(o['mac']),
    ip: strOrNull(o['ip']),
    user: strOrNull(o['user']),
    plan: strOrNull(o['plan']),
    metric: oneOf(o['metric'], ['bytes', 'seconds'] as const),
    allotment: big(o['allotment']),
    used: counter(o['used']),
    bytes: counter(o['bytes']),
    createdAt: int(o['createdAt']),
    startedAt: intOrNull(o['startedAt']),
    expiresAt: intOrNull(o['expiresAt']),
    endedAt: intOrNull(o['endedAt']),
    state: oneOf(o['state'], SESSION_STATES),
    endCause: o['endCause'] === null ? null : oneOf<EndCause>(o['endCause'], END_CAUSES),
    payments: o['payments'].map(paymentFromJson),
    ...(o['pc'] !== undefined && { paymentCount: int(o['pc']) }),
    ...(o['paid'] !== undefined && { paidTotal: big(o['paid']) }),
    ...(o['mark'] !== undefined && { meterMark: markFromJson(o['mark']) }),
    ...(o['maxd'] !== undefined && { maxDevices: int(o['maxd']), devices: strings(o['dev']) }),
    // Absent in journals written before sessions carried rates: recovery gives such a session its plan's.
    ...(o['rt'] !== undefined && { rates: ratesFromJson(o['rt']) }),
  };
}

function fromJson(v: unknown): JournalLine {
  const o = obj(v);
  switch (o['t']) {
    case 'open':
      return { t: 'open', session: sessionFromJson(o['s']), keys: strings(o['keys']) };
    case 'topup':
      return {
        t: 'topup',
        id: str(o['id']),
        add: big(o['add']),
        payment: paymentFromJson(o['p']),
        keys: strings(o['keys']),
        at: int(o['at']),
      };
    case 'limits':
      return {
        t: 'limits',
        id: str(o['id']),
        allotment: big(o['allot']),
        expiresAt: intOrNull(o['exp']),
        at: int(o['at']),
        ...(o['st'] === undefined ? {} : { startedAt: int(o['st']) }),
        ...(o['keys'] === undefined ? {} : { keys: strings(o['keys']) }),
      };
    case 'join':
    case 'leave':
      return { t: o['t'], id: str(o['id']), mac: str(o['mac']), at: int(o['at']) };
    case 'move':
      return { t: 'move', id: str(o['id']), mac: macOf(o['mac']), at: int(o['at']) };
    case 'rates':
      return { t: 'rates', id: str(o['id']), rates: ratesFromJson(o['rt']), at: int(o['at']) };
    case 'end':
      return {
        t: 'end',
        id: str(o['id']),
        state: oneOf(o['state'], ['EXPIRED', 'TERMINATED'] as const),
        cause: oneOf(o['cause'], END_CAUSES),
        at: int(o['at']),
        used: counter(o['used']),
        bytes: counter(o['bytes']),
      };
    case 'usage': {
      if (!Array.isArray(o['u'])) throw new Invalid('u not an array');
      const entries = o['u'].map((e): UsageEntry => {
        if (!Array.isArray(e) || (e.length !== 3 && e.length !== 4)) throw new Invalid('bad usage entry');
        return e.length === 4
          ? [str(e[0]), counter(e[1]), counter(e[2]), markFromJson(e[3])]
          : [str(e[0]), counter(e[1]), counter(e[2])];
      });
      return { t: 'usage', at: int(o['at']), entries };
    }
    case 'snap':
      if (o['v'] !== 1) throw new Invalid('unknown snapshot version');
      return {
        t: 'snap',
        v: 1,
        gen: int(o['gen']),
        at: int(o['at']),
        ...(o['headed'] === true && { headed: true as const }),
        ...(o['body'] !== undefined && { body: int(o['body']) }),
      };
    case 'jnl':
      if (o['v'] !== 1) throw new Invalid('unknown journal version');
      return { t: 'jnl', v: 1, gen: int(o['gen']), at: int(o['at']) };
    case 'ref':
      return { t: 'ref', key: str(o['k']), at: int(o['at']) };
    case 'sales': {
      if (!Array.isArray(o['p'])) throw new Invalid('p not an array');
      const sales = o['p'].map((e): Sale => {
        if (!Array.isArray(e) || e.length !== 4) throw new Invalid('bad sale');
        return [int(e[0]), str(e[1]), str(e[2]), big(e[3])];
      });
      return { t: 'sales', since: int(o['since']), sales };
    }
    default:
      throw new Invalid('unknown record type');
  }
}

/** Checks a parsed record field by field; returns the reason instead of throwing, for the recovery report. */
export function decodeRecord(parsed: unknown): JsonDecoded<JournalLine> {
  try {
    return { ok: true, value: fromJson(parsed) };
  } catch (err) {
    return { ok: false, reason: err instanceof Invalid ? err.message : 'bad record' };
  }
}

/** decodeRecord, with the line's sequence number. */
export function decodeNumbered(parsed: unknown): JsonDecoded<NumberedLine> {
  const decoded = decodeRecord(parsed);
  if (!decoded.ok) return decoded;
  const n = (parsed as Record<string, unknown>)['n'];
  if (n !== undefined && (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0))
    return { ok: false, reason: 'bad sequence number' };
  return { ok: true, value: { line: decoded.value, n } };
}
