/**
 * ubus messages (ubusmsg.h): 8-byte header {version u8, type u8, seq u16, peer u32} followed by one top-level
 * blob_attr (id 0) whose payload is the plain message attributes. All big-endian.
 */
import { BlobWriter, pad4, readBlobAttrs, readCString, readU16, readU32 } from './blob.ts';
import { encodeBlobmsgNodes, nodesToTable, tryDecodeBlobmsgNodes, writeBlobmsgTable } from './blobmsg.ts';
import type { BlobmsgNode, BlobmsgTable } from './blobmsg.ts';
import {
  Attr,
  BLOB_ATTR_LEN_MASK,
  BlobmsgType,
  MonitorAttr,
  MsgType,
  UBUS_HEADER_LEN,
  UBUS_MAX_MSGLEN,
  UBUS_MSGHDR_LEN,
} from './constants.ts';
import { UbusCodecError, undecodable } from './error.ts';

/** method → argument → BlobmsgType number (informational; ubusd does not enforce it). */
export type UbusSignature = Record<string, Record<string, number>>;

export interface UbusAttrs {
  status?: number;
  objpath?: string;
  objid?: number;
  method?: string;
  objtype?: number;
  signature?: UbusSignature;
  /** SIGNATURE body bytes: always filled on decode; used verbatim on encode when set (wins over `signature`). */
  signatureRaw?: Uint8Array;
  /** Decoded DATA body; unset when the body is not valid blobmsg (then only `dataRaw` is there). */
  data?: BlobmsgTable;
  /** DATA body bytes: always filled on decode; used verbatim on encode when set (wins over `data`). */
  dataRaw?: Uint8Array;
  target?: number;
  active?: boolean;
  noReply?: boolean;
  subscribers?: number[];
  user?: string;
  group?: string;
}

/** One top-level attr exactly as received. */
export interface UbusRawAttr {
  id: number;
  /** Plain ubus attrs are never extended; kept so odd input still round-trips. */
  extended?: boolean;
  payload: Uint8Array;
}

export interface UbusMessage {
  type: number;
  seq: number;
  /** u32, unsigned. */
  peer: number;
  attrs: UbusAttrs;
  /** Always 0 on send; ubusd ignores it, libubus drops messages where it is not 0. */
  version?: number;
  /** All attrs in wire order (filled on decode). When present, encode writes these and ignores `attrs`. */
  rawAttrs?: UbusRawAttr[];
}

export interface UbusHeader {
  version: number;
  type: number;
  seq: number;
  peer: number;
  /** Header (8) + top-level blob length (unpadded): how many bytes this message occupies on the stream. */
  totalLength: number;
}

/**
 * Reads and validates the first 12 bytes, as ubusd does before reading a body: the top-level blob must be
 * at least its own 4-byte header and, padded, at most UBUS_MAX_MSGLEN.
 */
export function decodeHeader(buf: Uint8Array): UbusHeader {
  if (buf.length < UBUS_HEADER_LEN) throw undecodable(`ubus header needs ${UBUS_HEADER_LEN} bytes, got ${buf.length}`);
  const blobLen = readU32(buf, 8) & BLOB_ATTR_LEN_MASK;
  if (blobLen < 4) throw undecodable(`ubus message blob length ${blobLen} < 4`);
  if (pad4(blobLen) > UBUS_MAX_MSGLEN)
    throw new UbusCodecError(`ubus message blob length ${blobLen} exceeds ${UBUS_MAX_MSGLEN}`, {
      length: blobLen,
      limit: UBUS_MAX_MSGLEN,
    });
  return {
    version: buf[0]!,
    type: buf[1]!,
    seq: readU16(buf, 2),
    peer: readU32(buf, 4),
    totalLength: UBUS_MSGHDR_LEN + blobLen,
  };
}

export interface DecodeOptions {
  /**
   * Default true. false leaves DATA and SIGNATURE as bytes only (`dataRaw`, `signatureRaw`): a broker forwards
   * them untouched, and decoding blobmsg is most of the cost of decoding a message.
   */
  blobmsg?: boolean;
}

export function decodeMessage(buf: Uint8Array, opts: DecodeOptions = {}): UbusMessage {
  const h = decodeHeader(buf);
  if (buf.length < h.totalLength) throw undecodable(`truncated ubus message: ${buf.length} of ${h.totalLength} bytes`);
  if (buf.length > h.totalLength) throw undecodable(`${buf.length - h.totalLength} bytes after the ubus message`);
  const rawAttrs: UbusRawAttr[] = [];
  for (const a of readBlobAttrs(buf, UBUS_HEADER_LEN, h.totalLength)) {
    const raw: UbusRawAttr = { id: a.id, payload: buf.slice(a.payloadStart, a.payloadEnd) };
    if (a.extended) raw.extended = true;
    rawAttrs.push(raw);
  }
  // MONITOR frames reuse attr ids with other meanings (see decodeMonitor), so they get no typed view.
  const attrs = h.type === MsgType.MONITOR ? {} : typedAttrs(rawAttrs, opts.blobmsg !== false);
  return { type: h.type, seq: h.seq, peer: h.peer, attrs, version: h.version, rawAttrs };
}

function u32Of(a: UbusRawAttr, what: string): number {
  if (a.payload.length !== 4) throw undecodable(`${what} attr has ${a.payload.length} bytes, wants 4`);
  return readU32(a.payload, 0);
}

function u8Of(a: UbusRawAttr, what: string): number {
  if (a.payload.length !== 1) throw undecodable(`${what} attr has ${a.payload.length} bytes, wants 1`);
  return a.payload[0]!;
}

function stringOf(a: UbusRawAttr, what: string): string {
  return readCString(a.payload, 0, a.payload.length, `${what} attr`);
}

/** Repeated ids: the last one wins, as in libubox blob_parse. Unknown ids are kept only in rawAttrs. */
function typedAttrs(raw: readonly UbusRawAttr[], blobmsg: boolean): UbusAttrs {
  const out: UbusAttrs = {};
  for (const a of raw) {
    switch (a.id) {
      case Attr.STATUS:
        out.status = u32Of(a, 'STATUS');
        break;
      case Attr.OBJPATH:
        out.objpath = stringOf(a, 'OBJPATH');
        break;
      case Attr.OBJID:
        out.objid = u32Of(a, 'OBJID');
        break;
      case Attr.METHOD:
        out.method = stringOf(a, 'METHOD');
        break;
      case Attr.OBJTYPE:
        out.objtype = u32Of(a, 'OBJTYPE');
        break;
      case Attr.SIGNATURE: {
        // ubusd accepts a bad signature and creates the object without a type; mirror that leniency.
        const nodes = blobmsg ? tryDecodeBlobmsgNodes(a.payload) : undefined;
        if (nodes !== undefined) out.signature = signatureFromNodes(nodes);
        else delete out.signature;
        out.signatureRaw = a.payload;
        break;
      }
      case Attr.DATA: {
        // DATA is opaque to ubusd, and real peers send non-blobmsg bodies (the `ubus monitor` CLI puts plain
        // attrs there), so a body that is not blobmsg leaves `data` unset instead of failing the message.
        const nodes = blobmsg ? tryDecodeBlobmsgNodes(a.payload) : undefined;
        if (nodes !== undefined) out.data = nodesToTable(nodes);
        else delete out.data;
        out.dataRaw = a.payload;
        break;
      }
      case Attr.TARGET:
        out.target = u32Of(a, 'TARGET');
        break;
      case Attr.ACTIVE:
        out.active = u8Of(a, 'ACTIVE') !== 0;
        break;
      case Attr.NO_REPLY:
        out.noReply = u8Of(a, 'NO_REPLY') !== 0;
        break;
      case Attr.SUBSCRIBERS:
        out.subscribers = readBlobAttrs(a.payload, 0, a.payload.length).map((s) => {
          if (s.payloadEnd - s.payloadStart !== 4) throw undecodable('SUBSCRIBERS entry is not a u32');
          return readU32(a.payload, s.payloadStart);
        });
        break;
      case Attr.USER:
        out.user = stringOf(a, 'USER');
        break;
      case Attr.GROUP:
        out.group = stringOf(a, 'GROUP');
        break;
      default:
        break;
    }
  }
  return out;
}

/** Only TABLE entries with integer members are methods; anything else is skipped (it stays in rawAttrs). */
function signatureFromNodes(nodes: readonly BlobmsgNode[]): UbusSignature {
  const sig: UbusSignature = {};
  for (const m of nodes) {
    if (m.type !== BlobmsgType.TABLE) continue;
    const args: Record<string, number> = {};
    for (const arg of m.children ?? []) if (typeof arg.value === 'number') args[arg.name] = arg.value;
    sig[m.name] = args;
  }
  return sig;
}

export function encodeSignature(sig: UbusSignature): Uint8Array {
  return encodeBlobmsgNodes(
    Object.entries(sig).map(([method, args]) => ({
      name: method,
      type: BlobmsgType.TABLE,
      children: Object.entries(args).map(([arg, t]) => ({ name: arg, type: BlobmsgType.INT32, value: t })),
    })),
  );
}

/**
 * Typed attrs are written in the order libubus/ubusd use, so re-encoding captured frames gives the same
 * bytes: STATUS first (libubus replies) except in ubusd's NOTIFY status, where it follows SUBSCRIBERS;
 * NO_REPLY first in a forwarded INVOKE (ubusd) but after METHOD in a NOTIFY (libubus); DATA last.
 */
function writeTypedAttrs(w: BlobWriter, type: number, a: UbusAttrs): void {
  const statusLast = a.subscribers !== undefined;
  const noReplyAfterMethod = type === MsgType.NOTIFY;
  if (a.status !== undefined && !statusLast) w.putU32(Attr.STATUS, a.status);
  if (a.noReply !== undefined && !noReplyAfterMethod) w.putU8(Attr.NO_REPLY, a.noReply ? 1 : 0);
  if (a.objpath !== undefined) w.putString(Attr.OBJPATH, a.objpath);
  if (a.objid !== undefined) w.putU32(Attr.OBJID, a.objid);
  if (a.method !== undefined) w.putString(Attr.METHOD, a.method);
  if (a.noReply !== undefined && noReplyAfterMethod) w.putU8(Attr.NO_REPLY, a.noReply ? 1 : 0);
  if (a.objtype !== undefined) w.putU32(Attr.OBJTYPE, a.objtype);
  if (a.signatureRaw !== undefined) w.put(Attr.SIGNATURE, false, a.signatureRaw);
  else if (a.signature !== undefined) w.put(Attr.SIGNATURE, false, encodeSignature(a.signature));
  if (a.target !== undefined) w.putU32(Attr.TARGET, a.target);
  if (a.active !== undefined) w.putU8(Attr.ACTIVE, a.active ? 1 : 0);
  if (a.subscribers !== undefined) {
    const t = w.start(Attr.SUBSCRIBERS, false);
    for (const id of a.subscribers) w.putU32(0, id);
    w.end(t);
  }
  if (a.status !== undefined && statusLast) w.putU32(Attr.STATUS, a.status);
  if (a.user !== undefined) w.putString(Attr.USER, a.user);
  if (a.group !== undefined) w.putString(Attr.GROUP, a.group);
  if (a.dataRaw !== undefined) w.put(Attr.DATA, false, a.dataRaw);
  else if (a.data !== undefined) {
    // Written in place: a table encoded apart would be one more buffer and one more copy of the message's bulk.
    const t = w.start(Attr.DATA, false);
    writeBlobmsgTable(w, a.data);
    w.end(t);
  }
}

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new UbusCodecError(`${what} ${v} is not an integer in 0..${max}`);
}

export function encodeMessage(msg: UbusMessage): Buffer {
  checkUint(msg.type, 0xff, 'message type');
  checkUint(msg.seq, 0xffff, 'seq');
  checkUint(msg.peer, 0xffffffff, 'peer');
  checkUint(msg.version ?? 0, 0xff, 'version');
  const w = BlobWriter.reusing();
  w.u8(msg.version ?? 0);
  w.u8(msg.type);
  w.u16(msg.seq);
  w.u32(msg.peer);
  const top = w.start(0, false);
  if (msg.rawAttrs !== undefined) for (const r of msg.rawAttrs) w.put(r.id, r.extended === true, r.payload);
  else writeTypedAttrs(w, msg.type, msg.attrs);
  w.end(top);
  // libubus refuses to send what ubusd would drop the connection for. UBUS_MAX_MSGLEN counts the blob (its 4-byte
  // header included), not the 8-byte message header. `limit` in the details marks this case for callers.
  const blobLen = w.length - UBUS_MSGHDR_LEN;
  if (blobLen > UBUS_MAX_MSGLEN)
    throw new UbusCodecError(`ubus message of ${blobLen} bytes exceeds ${UBUS_MAX_MSGLEN}`, {
      length: blobLen,
      limit: UBUS_MAX_MSGLEN,
    });
  return w.finish();
}

/** The attrs of a MONITOR frame (UBUS_MONITOR_* ids): a copy of one message ubusd received or sent. */
export interface UbusMonitorRecord {
  client: number;
  peer: number;
  /** true: ubusd → client. */
  send: boolean;
  seq: number;
  type: number;
  /** The observed message's attrs (its top-level blob payload). */
  data: Uint8Array;
}

export function decodeMonitor(msg: UbusMessage): UbusMonitorRecord {
  const rec: Partial<UbusMonitorRecord> = {};
  for (const a of msg.rawAttrs ?? []) {
    switch (a.id) {
      case MonitorAttr.CLIENT:
        rec.client = u32Of(a, 'MONITOR CLIENT');
        break;
      case MonitorAttr.PEER:
        rec.peer = u32Of(a, 'MONITOR PEER');
        break;
      case MonitorAttr.SEND:
        rec.send = u8Of(a, 'MONITOR SEND') !== 0;
        break;
      case MonitorAttr.SEQ:
        rec.seq = u32Of(a, 'MONITOR SEQ');
        break;
      case MonitorAttr.TYPE:
        rec.type = u32Of(a, 'MONITOR TYPE');
        break;
      case MonitorAttr.DATA:
        rec.data = a.payload;
        break;
      default:
        break;
    }
  }
  const { client, peer, send, seq, type, data } = rec;
  if (
    client === undefined ||
    peer === undefined ||
    send === undefined ||
    seq === undefined ||
    type === undefined ||
    data === undefined
  ) {
    throw new UbusCodecError('MONITOR message lacks one of CLIENT, PEER, SEND, SEQ, TYPE, DATA');
  }
  return { client, peer, send, seq, type, data };
}

/** Builds the attrs of a MONITOR frame in ubusd's order (CLIENT, PEER, SEQ, TYPE, SEND, DATA). */
export function encodeMonitorAttrs(rec: UbusMonitorRecord): UbusRawAttr[] {
  const u32 = (v: number): Uint8Array => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return b;
  };
  return [
    { id: MonitorAttr.CLIENT, payload: u32(rec.client) },
    { id: MonitorAttr.PEER, payload: u32(rec.peer) },
    { id: MonitorAttr.SEQ, payload: u32(rec.seq) },
    { id: MonitorAttr.TYPE, payload: u32(rec.type) },
    { id: MonitorAttr.SEND, payload: Uint8Array.of(rec.send ? 1 : 0) },
    { id: MonitorAttr.DATA, payload: rec.data },
  ];
}
