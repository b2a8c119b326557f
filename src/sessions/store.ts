/**
 * Where sessions live across restarts. The manager appends small records; a store folds them into state with the
 * one reducer below, so the in-memory and the flash journal stores cannot disagree about what a record means.
 *
 * Records (bigints stay bigint here, usage counters are numbers as in Session; the journal writes both as decimal
 * strings, so its lines read the same as before counters became numbers):
 *   open   a new session, in full, with the payment keys it consumed        (durable before resolve)
 *   topup  allotment added to a session + the payment + its keys + when     (durable before resolve)
 *   limits a session's allotment and deadline set anew (a RADIUS CoA-Request; a charge, with the keys it consumed)
 *   end    final state, cause, time and usage of a session
 *   usage  absolute `used`/`bytes` of the sessions that changed since the last checkpoint
 *   join   a device joined a multi-device session                          (durable before its gate opens)
 *   leave  a joined device was removed                                     (durable before its gate closes)
 *   move   a live session now belongs to another MAC (a returning customer's new private address, an admin's move)
 *   rates  a live session's speed tier set anew (ubus `change`, a CoA-Request)  (durable before the kernel hears of it)
 */
import { addPayment, copySession } from './model.ts';
import type { EndCause, MeterMark, PaymentRef, Session, SessionRates } from './model.ts';
import type { SluiceError } from '../errors.ts';
import { SalesBook } from './sales-book.ts';

export interface OpenRecord {
  t: 'open';
  session: Session;
  keys: string[];
}
export interface TopupRecord {
  t: 'topup';
  id: string;
  add: bigint;
  payment: PaymentRef;
  keys: string[];
  at: number;
}
/** `startedAt`: set when the record starts a time session's clock at its gate's opening (SessionManager.startClock). */
export interface LimitsRecord {
  t: 'limits';
  id: string;
  allotment: bigint;
  expiresAt: number | null;
  at: number;
  startedAt?: number;
  /** A charge's keys (SessionManager.charge): a repeat of the charge is refused, after a restart too. */
  keys?: string[];
}
export interface EndRecord {
  t: 'end';
  id: string;
  state: 'EXPIRED' | 'TERMINATED';
  cause: EndCause;
  at: number;
  used: number;
  bytes: number;
}
/** The session keeps its id, usage and allotment; only its MAC changes (durable before either gate is touched). */
export interface MoveRecord {
  t: 'move';
  id: string;
  mac: string;
  at: number;
}
export type UsageEntry = [id: string, used: number, bytes: number, mark?: MeterMark];
export interface UsageRecord {
  t: 'usage';
  at: number;
  entries: UsageEntry[];
}
export interface DeviceRecord {
  t: 'join' | 'leave';
  id: string;
  mac: string;
  at: number;
}
/**
 * The session's rates from now on (each direction null: not limited that way), replacing its plan's or earlier ones.
 */
export interface RatesRecord {
  t: 'rates';
  id: string;
  rates: SessionRates;
  at: number;
}
export type StoreRecord =
  OpenRecord | TopupRecord | LimitsRecord | EndRecord | UsageRecord | MoveRecord | DeviceRecord | RatesRecord;

export interface StoreState {
  sessions: Map<string, Session>;
  /** Payment keys already applied (see model.paymentKeys) → when. */
  refs: Map<string, number>;
  /** Every payment sold within the sales window (sales-book.ts): what ubus `sales` sums. */
  sales: SalesBook;
}

export interface LoadResult extends StoreState {
  /** Problems recovery worked around (ERR_JOURNAL_CORRUPT, a torn tail truncated…): for the log, never fatal. */
  warnings: SluiceError[];
}

export interface SessionStore {
  /** Reads everything back. Called once, before the first append. Returns copies the caller owns. */
  load(): Promise<LoadResult>;
  /** Resolves once the records are durable (on flash for the journal). Records are applied in call order. */
  append(records: readonly StoreRecord[]): Promise<void>;
  /** Drops ended sessions and old payment keys past the retention (and rewrites the journal, if any). */
  compact(now: number): Promise<void>;
  /** Waits for pending appends, then releases the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * How long ended sessions and payment keys stay. Ended sessions: those ended in the last 24 h, at most the 1000 most
 * recent, so `session {mac}` can still show why a client was cut off this morning while flash stays bounded.
 * Payment keys: 90 days, far past any x402 authorization's validBefore or a voucher's life, so a replay is refused.
 */
export interface RetentionPolicy {
  endedMax: number;
  endedMaxAgeMs: number;
  refsMaxAgeMs: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = {
  endedMax: 1000,
  endedMaxAgeMs: 24 * 3600_000,
  refsMaxAgeMs: 90 * 24 * 3600_000,
};

/** `now`: from when a new sales book is complete. */
export function emptyState(now = Date.now()): StoreState {
  return { sessions: new Map(), refs: new Map(), sales: new SalesBook(now) };
}

/**
 * Folds one record into the state (mutating it). Records about unknown sessions are ignored: they can only follow a
 * record lost to corruption, and inventing a session from a fragment would be worse.
 */
export function applyRecord(state: StoreState, record: StoreRecord): void {
  switch (record.t) {
    case 'open': {
      state.sessions.set(record.session.id, copySession(record.session));
      for (const key of record.keys) state.refs.set(key, record.session.createdAt);
      // A sale: a journal's `open` is always a new session (a snapshot's sessions are read apart: journal-start.ts).
      for (const p of record.session.payments) state.sales.add(p);
      return;
    }
    case 'topup': {
      for (const key of record.keys) state.refs.set(key, record.at);
      state.sales.add(record.payment);
      const session = state.sessions.get(record.id);
      if (!session) return;
      session.allotment += record.add;
      if (session.expiresAt !== null && session.metric === 'seconds') session.expiresAt += Number(record.add) * 1000;
      addPayment(session, record.payment);
      return;
    }
    case 'limits': {
      for (const key of record.keys ?? []) state.refs.set(key, record.at);
      const session = state.sessions.get(record.id);
      if (!session || session.endedAt !== null) return;
      session.allotment = record.allotment;
      session.expiresAt = record.expiresAt;
      // Without it a restart put the start back to the purchase: `used` then counted the wait for the gate too.
      if (record.startedAt !== undefined) session.startedAt = record.startedAt;
      return;
    }
    case 'move': {
      const session = state.sessions.get(record.id);
      // Only a live session moves; a move after its end (a torn order cannot produce one) changes nothing.
      if (!session || session.endedAt !== null) return;
      session.mac = record.mac;
      session.ip = null;
      return;
    }
    case 'rates': {
      const session = state.sessions.get(record.id);
      if (!session || session.endedAt !== null) return;
      session.rates = { ...record.rates };
      return;
    }
    case 'end': {
      const session = state.sessions.get(record.id);
      if (!session) return;
      session.state = record.state;
      session.endCause = record.cause;
      session.endedAt = record.at;
      session.used = record.used;
      session.bytes = record.bytes;
      return;
    }
    case 'join':
    case 'leave': {
      const session = state.sessions.get(record.id);
      if (!session || session.endedAt !== null) return;
      const others = (session.devices ?? []).filter((m) => m !== record.mac);
      session.devices = record.t === 'join' ? [...others, record.mac] : others;
      return;
    }
    case 'usage': {
      for (const [id, used, bytes, mark] of record.entries) {
        const session = state.sessions.get(id);
        // A checkpoint never rewinds: a late usage record cannot undo an end record's final figures.
        if (!session || session.endedAt !== null) continue;
        if (used > session.used) session.used = used;
        if (bytes > session.bytes) session.bytes = bytes;
        if (mark) session.meterMark = { ...mark };
      }
      return;
    }
  }
}

/** Ended sessions and payment keys that the retention policy no longer keeps. */
export function expiredByRetention(
  sessions: Iterable<Session>,
  refs: Map<string, number>,
  now: number,
  policy: RetentionPolicy,
): { sessionIds: string[]; refKeys: string[] } {
  const ended: Session[] = [];
  for (const s of sessions) if (s.endedAt !== null) ended.push(s);
  ended.sort((a, b) => (b.endedAt ?? 0) - (a.endedAt ?? 0));
  const sessionIds: string[] = [];
  ended.forEach((s, index) => {
    if (index >= policy.endedMax || now - (s.endedAt ?? 0) > policy.endedMaxAgeMs) sessionIds.push(s.id);
  });
  const refKeys: string[] = [];
  for (const [key, at] of refs) if (now - at > policy.refsMaxAgeMs) refKeys.push(key);
  return { sessionIds, refKeys };
}

export function pruneState(state: StoreState, now: number, policy: RetentionPolicy): void {
  const { sessionIds, refKeys } = expiredByRetention(state.sessions.values(), state.refs, now, policy);
  for (const id of sessionIds) state.sessions.delete(id);
  for (const key of refKeys) state.refs.delete(key);
  state.sales.prune(now);
}

export function copyState(state: StoreState): StoreState {
  const sessions = new Map<string, Session>();
  for (const [id, s] of state.sessions) sessions.set(id, copySession(s));
  return { sessions, refs: new Map(state.refs), sales: state.sales.copy() };
}
