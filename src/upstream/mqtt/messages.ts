/**
 * What sluice publishes, as pure builders (docs/mqtt.md has the schemas). Every message is a map that starts with
 * the envelope {v, router, seq, type, at}. `seq` is the outbox's sequence number for usage and session messages (one
 * series per router, persisted, so a consumer deduplicates and sees gaps); status and command replies are not part of
 * that series and carry the last number it reached. Integers are plain numbers (all below 2^53); payment amounts,
 * which may not be, are decimal strings.
 */
import type { Packr } from 'msgpackr';
import { lazyPart } from '../../lazy.ts';
import type { MqttFormat } from '../../config/index.ts';
import type { UsageReport } from '../../meter/index.ts';
import {
  remaining,
  type PaymentRef,
  type Session,
  type SessionNumbers,
  type SessionRates,
} from '../../sessions/index.ts';
import {
  MsgpackWriter,
  patchArray32,
  patchUint32,
  rowPrefix,
  withUint,
  writeUsageRow,
  type RowPrefixes,
} from './writer.ts';

export const MESSAGE_VERSION = 1;
/** Outbox record types (the topic a stored record goes to). */
export const RECORD_TYPE = { usage: 1, session: 2 } as const;
/** Columns of a usage row, in order. up/down: bytes from/to the client since the previous report. */
export const USAGE_FIELDS = [
  'id',
  'mac',
  'user',
  'metric',
  'up',
  'down',
  'bytes',
  'used',
  'allotment',
  'remaining',
  'state',
] as const;

let packr: Packr | undefined;
/** msgpackr, read when the sink opens its queue (sink.ts openQueue), before anything is encoded or decoded: an idle
 *  router with mqtt off never loads it (docs/performance.md, "Idle memory"). */
export const loadMsgpack = lazyPart("msgpackr (the MQTT sink's MessagePack)", async () => {
  const { Packr } = await import('msgpackr');
  // useRecords off: msgpackr's record extension is not MessagePack every decoder reads (Python's msgpack would not).
  // int64AsType 'number': uint64 values (timestamps, byte totals) decode as numbers, not bigints.
  packr ??= new Packr({ useRecords: false, variableMapSize: true, int64AsType: 'number' });
});

function msgpack(): Packr {
  if (packr === undefined) throw new Error('msgpackr is not loaded: the MQTT sink encodes only once its queue is open');
  return packr;
}

/** msgpackr writes integers above 32 bits as float64; as bigints it writes them as MessagePack integers. */
function integersAsInt64(value: unknown): unknown {
  if (typeof value === 'number')
    return Number.isSafeInteger(value) && (value > 0xffffffff || value < -0x80000000) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(integersAsInt64);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = integersAsInt64(v);
    return out;
  }
  return value;
}

export function encode(format: MqttFormat, value: unknown): Buffer {
  return format === 'json' ? Buffer.from(JSON.stringify(value)) : msgpack().pack(integersAsInt64(value));
}

/** Decodes a JSON (first byte `{`) or MessagePack payload; throws on garbage. */
export function decode(payload: Uint8Array): unknown {
  if (payload.length > 0 && payload[0] === 0x7b) return JSON.parse(Buffer.from(payload).toString('utf8'));
  return msgpack().unpack(payload);
}

export const contentType = (format: MqttFormat): string =>
  format === 'json' ? 'application/json' : 'application/msgpack';

export interface Envelope {
  v: number;
  router: string;
  seq: number;
  /** Usage and session messages: the seq of the router's session message before this one (0: none ever). */
  prev_session_seq?: number;
  type: string;
  at: number;
}

/** Who sends a message, in which format, and when (ms): what every message's envelope starts from. */
export interface MessageHead {
  format: MqttFormat;
  router: string;
  at: number;
}

function envelope(head: MessageHead, seq: number, type: string, prevSession?: number): Envelope {
  const { router, at } = head;
  if (prevSession === undefined) return { v: MESSAGE_VERSION, router, seq, type, at };
  return { v: MESSAGE_VERSION, router, seq, prev_session_seq: prevSession, type, at };
}

function sessionBody(s: Session, now: number) {
  return {
    id: s.id,
    mac: s.mac,
    ip: s.ip,
    user: s.user,
    plan: s.plan,
    metric: s.metric,
    state: s.state,
    cause: s.endCause,
    allotment: Number(s.allotment),
    used: Number(s.used),
    bytes: Number(s.bytes),
    remaining: Number(remaining(s, now)),
    started_at: s.startedAt,
    expires_at: s.expiresAt,
    ended_at: s.endedAt,
    at: now,
    // The session's speed tier (journaled with it), bit/s; null: not limited that way.
    rate_down: s.rates?.downBps ?? null,
    rate_up: s.rates?.upBps ?? null,
  };
}

function paymentBody(p: PaymentRef) {
  return { method: p.method, reference: p.reference, amount: p.amount.toString(), asset: p.asset, at: p.at };
}

export type SessionEventKind = 'started' | 'topup' | 'ended';

/** A session message as a function of its sequence number (the outbox assigns it); `moved`: roaming.md. */
export function sessionMessage(
  head: MessageHead,
  event: SessionEventKind,
  session: Session,
  { payment, moved = null }: { payment?: PaymentRef | undefined; moved?: Record<string, unknown> | null } = {},
): (seq: number, prevSession?: number) => Buffer {
  const body: Record<string, unknown> = {
    event,
    session: sessionBody(session, head.at),
    ...(moved !== null && { moved }),
  };
  if (event === 'started' && session.payments[0]) body['payment'] = paymentBody(session.payments[0]);
  if (event === 'topup' && payment) body['payment'] = paymentBody(payment);
  if (event === 'ended') body['payments'] = session.payments.map((p) => ({ method: p.method, reference: p.reference }));
  return (seq, prev) => encode(head.format, { ...envelope(head, seq, 'session', prev), ...body });
}

/**
 * A live session's speed tier set anew, on the session topic: `event` "rates", the session as it is now (its
 * `rate_down`/`rate_up` the new rates, bit/s, null: not limited that way), `previous` {`rate_down`, `rate_up`} before
 * the change (both null: it had no tier) and `by`, who asked: "ubus" (ubus `change`: LuCI, the CLI), "mqtt" (the
 * signed `change` command), "coa" (a RADIUS CoA-Request).
 */
export function ratesMessage(
  head: MessageHead,
  change: { session: Session; previous: SessionRates | null; by: string },
): (seq: number, prevSession?: number) => Buffer {
  const { session, previous, by } = change;
  const body = {
    event: 'rates',
    session: sessionBody(session, head.at),
    by,
    previous: { rate_down: previous?.downBps ?? null, rate_up: previous?.upBps ?? null },
  };
  return (seq, prev) => encode(head.format, { ...envelope(head, seq, 'session', prev), ...body });
}

/**
 * The escrow close of an x402-session session, on the session topic: `event` "escrow-closed", the sluice session as
 * it ended (nil when the journal no longer holds it; `mac` says whose it was) and `escrow` {`session_id`, `units`,
 * `transaction`, `seller_amount`, `buyer_refund`} (amounts as decimal strings in the asset's smallest unit).
 */
export function escrowClosedMessage(
  head: MessageHead,
  closed: {
    session: Session | null;
    mac: string;
    escrow: { sessionId: string; units: string; transaction: string | null; sellerAmount: string; buyerRefund: string };
  },
): (seq: number, prevSession?: number) => Buffer {
  const { session, mac, escrow: e } = closed;
  const body = {
    event: 'escrow-closed',
    session: session ? sessionBody(session, head.at) : null,
    mac,
    escrow: {
      session_id: e.sessionId,
      units: e.units,
      transaction: e.transaction,
      seller_amount: e.sellerAmount,
      buyer_refund: e.buyerRefund,
    },
  };
  return (seq, prev) => encode(head.format, { ...envelope(head, seq, 'session', prev), ...body });
}

export interface StatusInfo {
  version: string;
  uptime_s: number;
  sessions: Record<string, unknown>;
  pricing: unknown[];
  health: Record<string, number | string | null>; // the router's health for a fleet server (docs/mqtt.md)
  /** A venue router's lease TTL in seconds, where its switch runs (upstream/venue-lease-time.ts). */
  lease_ttl?: number;
}

export function statusMessage(head: MessageHead, lastSeq: number, fields: Record<string, unknown>): Buffer {
  return encode(head.format, { ...envelope(head, lastSeq, 'status'), ...fields });
}

/** One part of a usage report, with the offset of its `seq` slot (msgpack) or the text around it (json). */
export interface UsagePart {
  rows: number;
  /**
   * The payload for sequence number `seq`, the previous session message being `prevSession` (patched in place for
   * msgpack: call once per append; with UsageInput.writer, valid until that writer's next report).
   */
  payload(seq: number, prevSession: number): Buffer;
}

export interface UsageInput {
  router: string;
  at: number;
  usage: readonly UsageReport[];
  /**
   * A session's figures at `at` into `out`; false when sluice no longer knows it (the row's figures are nil). `slot`
   * is the report's (UsageReport.slot, -1 if none).
   */
  figuresInto: (sessionId: string, out: SessionNumbers, slot: number) => boolean;
  maxPayload: number;
  /**
   * msgpack: the encoded start of each session's row ([id, mac, user, metric] never change), kept between ticks by
   * the caller, which deletes a session's entry when it ends. Absent: encoded afresh.
   */
  prefixes?: RowPrefixes;
  /**
   * msgpack: the buffer to write the report into, kept by the caller between ticks (already paged in and warm:
   * a fresh 850 KB buffer per tick cost ~0.5 ms of page faults at 10k sessions). The parts' payloads are views of it,
   * valid until the next call with the same writer: the MQTT sink appends them to the outbox (which copies them to
   * the file and keeps none) before that. Absent: a new buffer.
   */
  writer?: MsgpackWriter;
}

/**
 * One reused figures object per process: filled per row, never kept. Its numbers start as doubles (2^53 - 1, not 0):
 * a field that starts as a small integer and later holds 2^32 changes the object's layout, which deoptimized the
 * row loop in the first ticks.
 */
const scratch: SessionNumbers = {
  user: null,
  allotment: Number.MAX_SAFE_INTEGER,
  used: Number.MAX_SAFE_INTEGER,
  remaining: Number.MAX_SAFE_INTEGER,
  bytes: Number.MAX_SAFE_INTEGER,
  state: 'ACTIVE',
};

/** The tick's usage report, split so no part exceeds maxPayload (one row larger than that gets a part of its own). */
export function usageParts(format: MqttFormat, input: UsageInput): UsagePart[] {
  return format === 'json' ? usagePartsJson(input) : usagePartsMsgpack(input);
}

interface OpenPart {
  start: number;
  seqAt: number;
  prevAt: number;
  partsAt: number;
  rowsAt: number;
  rows: number;
}

/**
 * Starts part number `index` of a report at w.pos: the envelope and the columns, up to the rows' array header. A
 * module function, not a closure made per report: V8 inlines a call whose target stays the same, and a new closure
 * each tick deoptimized the row loop.
 */
function openPart(w: MsgpackWriter, router: string, at: number, index: number): OpenPart {
  const start = w.pos;
  w.mapHeader(10);
  w.ascii('v');
  w.uint(MESSAGE_VERSION);
  w.ascii('router');
  w.str(router);
  w.ascii('seq');
  const seqAt = w.uint32Slot() - start;
  w.ascii('prev_session_seq');
  const prevAt = w.uint32Slot() - start;
  w.ascii('type');
  w.ascii('usage');
  w.ascii('at');
  w.uint(at);
  w.ascii('part');
  w.uint(index);
  w.ascii('parts');
  const partsAt = w.uint32Slot() - start;
  w.ascii('fields');
  w.arrayHeader(USAGE_FIELDS.length);
  for (const f of USAGE_FIELDS) w.ascii(f);
  w.ascii('sessions');
  return { start, seqAt, prevAt, partsAt, rowsAt: w.array32Slot() - start, rows: 0 };
}

function usagePartsMsgpack(input: UsageInput): UsagePart[] {
  const { router, at, usage, figuresInto, maxPayload, prefixes } = input;
  // Every part in one buffer, one after the other; with input.writer the same buffer every tick.
  const w = input.writer ?? new MsgpackWriter(256 + usage.length * 100);
  w.pos = 0;
  const parts: OpenPart[] = [];
  let part = openPart(w, router, at, 0);
  parts.push(part);
  for (let i = 0; i < usage.length; i++) {
    const u = usage[i]!;
    const slot = u.slot ?? -1;
    const known = figuresInto(u.sessionId, scratch, slot);
    let prefix = prefixes?.get(slot, u.sessionId);
    if (prefix === undefined) {
      prefix = rowPrefix(u.sessionId, u.mac, known ? scratch.user : null, u.metric);
      // Kept for live sessions only: the caller forgets a session when it ends (an ended one's row is its last), and an
      // unknown one's user is not known to be null.
      if (known && (scratch.state === 'ACTIVE' || scratch.state === 'PENDING'))
        prefixes?.set(slot, u.sessionId, prefix);
    }
    const rowAt = w.pos;
    writeUsageRow(w, prefix, u.deltaUploadBytes, u.deltaDownloadBytes, known ? scratch : null);
    if (w.pos - part.start > maxPayload && part.rows > 0) {
      w.pos = rowAt;
      part = openPart(w, router, at, parts.length);
      parts.push(part);
      writeUsageRow(w, prefix, u.deltaUploadBytes, u.deltaDownloadBytes, known ? scratch : null);
    }
    part.rows++;
  }
  const out: UsagePart[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const buf = w.buf.subarray(p.start, i + 1 < parts.length ? parts[i + 1]!.start : w.pos);
    patchArray32(buf, p.rowsAt, p.rows);
    patchUint32(buf, p.partsAt, parts.length);
    out.push(usagePart(buf, p.rows, p.seqAt, p.prevAt));
  }
  return out;
}

function usagePart(buf: Buffer, rows: number, seqAt: number, prevAt: number): UsagePart {
  // The later slot first: widening it (past 2^32) moves nothing before it.
  return { rows, payload: (seq, prev) => withUint(withUint(buf, prevAt, prev), seqAt, seq) };
}

function usagePartsJson(input: UsageInput): UsagePart[] {
  const { router, at, usage, figuresInto, maxPayload } = input;
  const rows = usage.map((u) => {
    const f = figuresInto(u.sessionId, scratch, u.slot ?? -1) ? scratch : null;
    return JSON.stringify([
      u.sessionId,
      u.mac,
      f ? f.user : null,
      u.metric,
      u.deltaUploadBytes,
      u.deltaDownloadBytes,
      f ? f.bytes : null,
      f ? f.used : null,
      f ? f.allotment : null,
      f ? f.remaining : null,
      f ? f.state : null,
    ]);
  });
  const head = `{"v":${MESSAGE_VERSION},"router":${JSON.stringify(router)},"seq":`;
  const fields = JSON.stringify(USAGE_FIELDS);
  // Room for the widest seq/part/parts numbers.
  const overhead = head.length + fields.length + 120 + Buffer.byteLength(router);
  const groups: string[][] = [[]];
  let size = overhead;
  for (const r of rows) {
    const n = Buffer.byteLength(r) + 1;
    if (size + n > maxPayload && groups.at(-1)!.length > 0) {
      groups.push([]);
      size = overhead;
    }
    groups.at(-1)!.push(r);
    size += n;
  }
  return groups.map((g, i) => {
    const tail =
      `,"type":"usage","at":${at},"part":${i},"parts":${groups.length},"fields":${fields},` +
      `"sessions":[${g.join(',')}]}`;
    return {
      rows: g.length,
      payload: (seq: number, prev: number) => Buffer.from(`${head}${seq},"prev_session_seq":${prev}${tail}`),
    };
  });
}

export function replyMessage(head: MessageHead, lastSeq: number, fields: Record<string, unknown>): Buffer {
  return encode(head.format, { ...envelope(head, lastSeq, 'reply'), ...fields });
}

/** A venue claim (docs/roaming.md): the envelope's fields, then the claim's. */
export function venueMessage(head: MessageHead, lastSeq: number, body: Record<string, unknown>): Buffer {
  return encode(head.format, { ...envelope(head, lastSeq, 'venue'), ...body });
}
