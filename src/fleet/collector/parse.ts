/**
 * What a router published, checked before anything is written (docs/mqtt.md has the schemas): the topic names the
 * router and the kind, the payload is MessagePack or JSON, version 1, its `router` the topic's (under the documented
 * broker ACL a router can publish only under its own id, so the topic is what is trusted), and every value is of its
 * type and within what a router can send. Anything else is a Reject with a reason the collector counts; it never
 * throws.
 */
import { Unpackr } from 'msgpackr';
import {
  boundedJson,
  LEASE_TTL_S,
  MAX_AMOUNT_DIGITS,
  MAX_JSON_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_USAGE_ROWS,
  Unbounded,
} from './bounds.ts';

/** A router id as main.router_id allows it. */
const ROUTER_ID = /^[A-Za-z0-9._-]{1,64}$/;
const DECIMAL = new RegExp(`^(0|[1-9][0-9]{0,${MAX_AMOUNT_DIGITS - 1}})$`);
/** 2020-01-01: a router's clock before it is unset, not a time it made a message. */
const EARLIEST_AT = 1_577_836_800_000;
/** How far ahead of the collector's clock a router's may be. */
const FUTURE_SLACK_MS = 366 * 86_400_000;
const MAX_TEXT = 512;

const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number', mapsAsObjects: true });

export type Kind = 'usage' | 'session' | 'status';

export interface UsageRow {
  id: string;
  mac: string;
  user: string | null;
  metric: string;
  up: number;
  down: number;
  bytes: number | null;
  used: number | null;
  allotment: number | null;
  remaining: number | null;
  state: string;
}

export interface SessionBody {
  id: string;
  mac: string;
  ip: string | null;
  user: string | null;
  plan: string | null;
  metric: string;
  state: string;
  cause: string | null;
  allotment: number | null;
  used: number | null;
  bytes: number | null;
  remaining: number | null;
  startedAt: number | null;
  expiresAt: number | null;
  endedAt: number | null;
  rateDown: number | null;
  rateUp: number | null;
}

export interface Payment {
  method: string;
  reference: string;
  /** Decimal, the asset's smallest unit. */
  amount: string;
  asset: string;
  at: number;
}

export interface EscrowClose {
  sessionId: string;
  units: string | null;
  transaction: string | null;
  sellerAmount: string | null;
  buyerRefund: string | null;
}

interface Base {
  router: string;
  at: number;
}

export type Inbound =
  | (Base & { kind: 'usage'; seq: number; prevSessionSeq: number | null; rows: UsageRow[] })
  | (Base & {
      kind: 'session';
      /** The seq of the router's session message before this one (0: none); null from a router that does not say. */
      prevSessionSeq: number | null;
      seq: number;
      event: string;
      /** Null for an event this collector does not know (a newer router's): stored in the ledger, nothing else. */
      session: SessionBody | null;
      payment: Payment | null;
      escrow: EscrowClose | null;
    })
  | (Base & {
      kind: 'status';
      seq: number;
      online: boolean;
      reason: string | null;
      version: string | null;
      uptimeS: number | null;
      /** The status' free-form maps as JSON text (bounds.ts), null when absent. */
      counters: string | null;
      pricing: string | null;
      queue: string | null;
      health: string | null;
      /** The router's declared lease TTL in seconds (bounds.ts LEASE_TTL_S), null when absent or not believed. */
      leaseTtlS: number | null;
      /** It declared one out of bounds (ignored; the lease service counts it refused). */
      leaseTtlRefused: boolean;
    });

export interface Reject {
  reject: string;
  /** The topic's router id, when the topic had one. */
  router: string | null;
  seq: number | null;
}

export const KNOWN_EVENTS = new Set(['started', 'topup', 'rates', 'ended', 'escrow-closed']);

class Bad extends Error {}

function fail(reason: string): never {
  throw new Bad(reason);
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);

function text(v: unknown, what: string, max = MAX_TEXT, min = 1): string {
  if (typeof v !== 'string' || v.length < min || v.length > max) fail(`${what} is not a text`);
  // PostgreSQL's text cannot hold a NUL: refused here, not by the database.
  if (v.includes('\u0000')) fail(`${what} holds a NUL character`);
  return v;
}

function textOrNull(v: unknown, what: string, max = MAX_TEXT): string | null {
  return v === null || v === undefined ? null : text(v, what, max);
}

function count(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} is not a count`);
  return v;
}

function countOrNull(v: unknown, what: string): number | null {
  return v === null || v === undefined ? null : count(v, what);
}

/** A status' `lease_ttl`: whole seconds within LEASE_TTL_S, null when absent; anything else only refused. */
function leaseTtlOf(v: unknown): number | null | 'refused' {
  if (v === null || v === undefined) return null;
  const ok = typeof v === 'number' && Number.isSafeInteger(v) && v >= LEASE_TTL_S.min && v <= LEASE_TTL_S.max;
  return ok ? v : 'refused';
}

function time(v: unknown, what: string, now: number): number {
  const t = count(v, what);
  if (t < EARLIEST_AT || t > now + FUTURE_SLACK_MS) fail(`${what} is not a plausible time`);
  return t;
}

function timeOrNull(v: unknown, what: string, now: number): number | null {
  return v === null || v === undefined ? null : time(v, what, now);
}

function decimal(v: unknown, what: string): string {
  if (typeof v !== 'string' || !DECIMAL.test(v))
    fail(`${what} is not a decimal amount of at most ${MAX_AMOUNT_DIGITS} digits`);
  return v;
}

function decimalOrNull(v: unknown, what: string): string | null {
  return v === null || v === undefined ? null : decimal(v, what);
}

function session(v: unknown, now: number): SessionBody {
  if (!isMap(v)) fail('session is not a map');
  return {
    id: text(v['id'], 'session.id', 64),
    mac: text(v['mac'], 'session.mac', 64),
    ip: textOrNull(v['ip'], 'session.ip', 64),
    user: textOrNull(v['user'], 'session.user'),
    plan: textOrNull(v['plan'], 'session.plan', 64),
    metric: text(v['metric'], 'session.metric', 16),
    state: text(v['state'], 'session.state', 16),
    cause: textOrNull(v['cause'], 'session.cause', 32),
    allotment: countOrNull(v['allotment'], 'session.allotment'),
    used: countOrNull(v['used'], 'session.used'),
    bytes: countOrNull(v['bytes'], 'session.bytes'),
    remaining: countOrNull(v['remaining'], 'session.remaining'),
    startedAt: timeOrNull(v['started_at'], 'session.started_at', now),
    expiresAt: v['expires_at'] === null || v['expires_at'] === undefined ? null : count(v['expires_at'], 'expires_at'),
    endedAt: timeOrNull(v['ended_at'], 'session.ended_at', now),
    rateDown: countOrNull(v['rate_down'], 'session.rate_down'),
    rateUp: countOrNull(v['rate_up'], 'session.rate_up'),
  };
}

function payment(v: unknown, now: number): Payment {
  if (!isMap(v)) fail('payment is not a map');
  return {
    method: text(v['method'], 'payment.method', 64),
    reference: text(v['reference'], 'payment.reference'),
    amount: decimal(v['amount'], 'payment.amount'),
    // Empty for a payment of no asset (an admin's grant).
    asset: text(v['asset'], 'payment.asset', 256, 0),
    at: time(v['at'], 'payment.at', now),
  };
}

function usageRows(m: Record<string, unknown>): UsageRow[] {
  const fields = m['fields'];
  const rows = m['sessions'];
  if (!Array.isArray(fields) || !fields.every((f) => typeof f === 'string')) fail('fields is not a list of names');
  if (!Array.isArray(rows)) fail('sessions is not a list of rows');
  if (rows.length > MAX_USAGE_ROWS) fail(`sessions has over ${MAX_USAGE_ROWS} rows`);
  const at = (name: string): number => {
    const i = (fields as string[]).indexOf(name);
    if (i < 0) fail(`fields has no ${name}`);
    return i;
  };
  const col = {
    id: at('id'),
    mac: at('mac'),
    user: at('user'),
    metric: at('metric'),
    up: at('up'),
    down: at('down'),
    bytes: at('bytes'),
    used: at('used'),
    allotment: at('allotment'),
    remaining: at('remaining'),
    state: at('state'),
  };
  const seen = new Set<string>();
  return rows.map((r: unknown) => {
    if (!Array.isArray(r) || r.length !== fields.length) fail('a row does not match fields');
    const id = text(r[col.id], 'row id', 64);
    // One row per session in a message: the database's upsert takes a session once per statement.
    if (seen.has(id)) fail('a session has two rows in one report');
    seen.add(id);
    return {
      id,
      mac: text(r[col.mac], 'row mac', 64),
      user: textOrNull(r[col.user], 'row user'),
      metric: text(r[col.metric], 'row metric', 16),
      up: count(r[col.up], 'row up'),
      down: count(r[col.down], 'row down'),
      bytes: countOrNull(r[col.bytes], 'row bytes'),
      used: countOrNull(r[col.used], 'row used'),
      allotment: countOrNull(r[col.allotment], 'row allotment'),
      remaining: countOrNull(r[col.remaining], 'row remaining'),
      // Nil when the router no longer knew the session at the tick.
      state: textOrNull(r[col.state], 'row state', 16) ?? 'UNKNOWN',
    };
  });
}

/** `<prefix>/<router>/<kind>` → its router and kind, or null for a topic that is none of the three. */
export function topicOf(prefix: string, topic: string): { router: string; kind: Kind } | null {
  if (!topic.startsWith(`${prefix}/`)) return null;
  const rest = topic.slice(prefix.length + 1).split('/');
  if (rest.length !== 2) return null;
  const [router, kind] = rest as [string, string];
  if (!ROUTER_ID.test(router) || (kind !== 'usage' && kind !== 'session' && kind !== 'status')) return null;
  return { router, kind };
}

function decode(payload: Uint8Array): unknown {
  if (payload.length > 0 && payload[0] === 0x7b) return JSON.parse(Buffer.from(payload).toString('utf8'));
  return unpackr.unpack(payload);
}

/** Checks one message; `now` is the collector's clock (ms), for what "a plausible time" is. */
export function parseMessage(prefix: string, topic: string, payload: Uint8Array, now: number): Inbound | Reject {
  const where = topicOf(prefix, topic);
  if (!where) return { reject: 'topic', router: null, seq: null };
  if (payload.length > MAX_PAYLOAD_BYTES)
    return { reject: `over ${MAX_PAYLOAD_BYTES} bytes`, router: where.router, seq: null };
  let m: unknown;
  try {
    m = decode(payload);
  } catch {
    return { reject: 'not MessagePack or JSON', router: where.router, seq: null };
  }
  if (!isMap(m)) return { reject: 'not a map', router: where.router, seq: null };
  const seqField = typeof m['seq'] === 'number' && Number.isSafeInteger(m['seq']) ? m['seq'] : null;
  try {
    if (m['v'] !== 1) fail('unknown version');
    if (m['router'] !== where.router) fail('router differs from the topic');
    if (m['type'] !== where.kind) fail('type differs from the topic');
    const at = time(m['at'], 'at', now);
    const seq = count(m['seq'], 'seq');
    const base = { router: where.router, at };
    if (where.kind === 'status') {
      if (typeof m['online'] !== 'boolean') fail('online is not a boolean');
      const leaseTtlS = leaseTtlOf(m['lease_ttl']);
      return {
        ...base,
        kind: 'status',
        seq,
        online: m['online'],
        reason: textOrNull(m['reason'], 'reason', 32),
        version: textOrNull(m['version'], 'version', 64),
        uptimeS: countOrNull(m['uptime_s'], 'uptime_s'),
        counters: isMap(m['sessions']) ? boundedJson(m['sessions'], 'sessions', MAX_JSON_BYTES.sessions) : null,
        pricing: Array.isArray(m['pricing']) ? boundedJson(m['pricing'], 'pricing', MAX_JSON_BYTES.pricing) : null,
        queue: isMap(m['queue']) ? boundedJson(m['queue'], 'queue', MAX_JSON_BYTES.queue) : null,
        health: isMap(m['health']) ? boundedJson(m['health'], 'health', MAX_JSON_BYTES.health) : null,
        leaseTtlS: leaseTtlS === 'refused' ? null : leaseTtlS,
        leaseTtlRefused: leaseTtlS === 'refused',
      };
    }
    if (seq < 1) fail('seq is not a positive number');
    const prevSessionSeq = countOrNull(m['prev_session_seq'], 'prev_session_seq');
    if (prevSessionSeq !== null && prevSessionSeq >= seq) fail('prev_session_seq is not below seq');
    if (where.kind === 'usage') return { ...base, kind: 'usage', seq, prevSessionSeq, rows: usageRows(m) };
    const event = text(m['event'], 'event', 32);
    if (!KNOWN_EVENTS.has(event))
      return { ...base, kind: 'session', seq, prevSessionSeq, event, session: null, payment: null, escrow: null };
    if (event === 'escrow-closed') {
      const e = m['escrow'];
      if (!isMap(e)) fail('escrow is not a map');
      return {
        ...base,
        kind: 'session',
        seq,
        prevSessionSeq,
        event,
        session: m['session'] === null || m['session'] === undefined ? null : session(m['session'], now),
        payment: null,
        escrow: {
          sessionId: text(e['session_id'], 'escrow.session_id'),
          units: decimalOrNull(e['units'], 'escrow.units'),
          transaction: textOrNull(e['transaction'], 'escrow.transaction'),
          sellerAmount: decimalOrNull(e['seller_amount'], 'escrow.seller_amount'),
          buyerRefund: decimalOrNull(e['buyer_refund'], 'escrow.buyer_refund'),
        },
      };
    }
    const carriesPayment = (event === 'started' || event === 'topup') && m['payment'] !== undefined;
    return {
      ...base,
      kind: 'session',
      seq,
      prevSessionSeq,
      event,
      session: session(m['session'], now),
      payment: carriesPayment && m['payment'] !== null ? payment(m['payment'], now) : null,
      escrow: null,
    };
  } catch (err) {
    if (err instanceof Bad || err instanceof Unbounded)
      return { reject: err.message, router: where.router, seq: seqField };
    throw err;
  }
}

export const isReject = (x: Inbound | Reject): x is Reject => 'reject' in x;
