/**
 * RADIUS packets (RFC 2865/2866/5176): a pure codec plus the cryptography sluice checks itself. Decoding is
 * garbage-tolerant: anything malformed is a RadiusPacketError (ERR_RADIUS_PACKET), never an exception of another kind
 * and never a partial packet. Authenticators are compared with crypto.timingSafeEqual; Message-Authenticator
 * (RFC 3579 §3.2, RFC 5176 §3.5) is computed and checked for every packet type, with the authenticator field that the
 * RFCs prescribe for that type (the `radius` npm package gets both wrong; see docs/radius.md).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { SluiceError, withoutStack } from '../errors.ts';
import { attributeByCode, attributeByName, VENDOR_SPECIFIC, type AttributeDef } from './dictionary.ts';

export const CODE = {
  'Access-Request': 1,
  'Access-Accept': 2,
  'Access-Reject': 3,
  'Accounting-Request': 4,
  'Accounting-Response': 5,
  'Access-Challenge': 11,
  'Status-Server': 12,
  'Disconnect-Request': 40,
  'Disconnect-ACK': 41,
  'Disconnect-NAK': 42,
  'CoA-Request': 43,
  'CoA-ACK': 44,
  'CoA-NAK': 45,
} as const;
export type CodeName = keyof typeof CODE;
const CODE_NAMES = new Map<number, CodeName>(Object.entries(CODE).map(([k, v]) => [v, k as CodeName]));

export const HEADER_LENGTH = 20;
export const MAX_PACKET_LENGTH = 4096;
const MA_TYPE = 80;
const ZERO16 = Buffer.alloc(16);

export class RadiusPacketError extends SluiceError {
  constructor(message: string) {
    super('ERR_RADIUS_PACKET', message);
    this.name = 'RadiusPacketError';
  }
}

/**
 * Bytes from the wire that are not a RADIUS packet (or an attribute of the wrong size): refused without a stack trace
 * (errors.ts withoutStack), since anyone on the network can send them by the thousand and the message says what was
 * wrong.
 */
function malformed(message: string): RadiusPacketError {
  return withoutStack(() => new RadiusPacketError(message));
}

/** One attribute as it was on the wire; vendor sub-attributes are unpacked (vendor > 0). */
export interface RawAttribute {
  vendor: number;
  type: number;
  value: Buffer;
}

export interface RadiusPacket {
  code: number;
  identifier: number;
  authenticator: Buffer;
  attributes: RawAttribute[];
  /** The packet's bytes (exactly `length` long). */
  raw: Buffer;
}

export type AttributeValue = string | number | bigint | Buffer | Date;
/** [name, value] with a dictionary name; values of integer attributes may be named (['Acct-Status-Type', 'Start']). */
export type AttributeInput = readonly [name: string, value: AttributeValue];

export function codeName(code: number): CodeName | undefined {
  return CODE_NAMES.get(code);
}

function def(name: string): AttributeDef {
  const d = attributeByName(name);
  if (!d) throw new RadiusPacketError(`unknown attribute ${name}`);
  return d;
}

function encodeValue(d: AttributeDef, value: AttributeValue): Buffer {
  if (Buffer.isBuffer(value)) return value;
  switch (d.kind) {
    case 'string':
    case 'octets':
      return Buffer.from(String(value), 'utf8');
    case 'integer':
    case 'date': {
      let n: number;
      if (value instanceof Date) n = Math.floor(value.getTime() / 1000);
      else if (typeof value === 'string' && d.values?.[value] !== undefined) n = d.values[value]!;
      else n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
        throw new RadiusPacketError(`${d.name}: ${String(value)} is not a 32-bit unsigned integer`);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    }
    case 'ipaddr': {
      const s = String(value);
      if (!isIPv4(s)) throw new RadiusPacketError(`${d.name}: ${s} is not an IPv4 address`);
      return Buffer.from(s.split('.').map(Number));
    }
    case 'ipv6addr': {
      const s = String(value);
      if (!isIPv6(s)) throw new RadiusPacketError(`${d.name}: ${s} is not an IPv6 address`);
      return ipv6Bytes(s);
    }
  }
}

function ipv6Bytes(s: string): Buffer {
  let text = s;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const p = v4[1]!.split('.').map(Number);
    text =
      text.slice(0, -v4[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Attributes → wire bytes (vendor attributes wrapped in one Vendor-Specific each). */
export function encodeAttributes(attrs: readonly AttributeInput[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of attrs) {
    const d = def(name);
    const v = encodeValue(d, value);
    // RFC 2865 §5: text and string attributes are never empty.
    if (v.length === 0) continue;
    if (d.vendor === 0) {
      if (v.length > 253) throw new RadiusPacketError(`${name}: value of ${v.length} bytes exceeds 253`);
      parts.push(Buffer.from([d.type, v.length + 2]), v);
    } else {
      if (v.length > 247) throw new RadiusPacketError(`${name}: value of ${v.length} bytes exceeds 247`);
      const head = Buffer.alloc(8);
      head[0] = VENDOR_SPECIFIC;
      head[1] = v.length + 8;
      head.writeUInt32BE(d.vendor, 2);
      head[6] = d.type;
      head[7] = v.length + 2;
      parts.push(head, v);
    }
  }
  return Buffer.concat(parts);
}

function md5(...parts: Buffer[]): Buffer {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
}

function hmacMd5(secret: Buffer, data: Buffer): Buffer {
  return createHmac('md5', secret).update(data).digest();
}

export function equalConstantTime(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function header(code: number, identifier: number, length: number, authenticator: Buffer): Buffer {
  const h = Buffer.alloc(HEADER_LENGTH);
  h[0] = code;
  h[1] = identifier;
  h.writeUInt16BE(length, 2);
  authenticator.copy(h, 4);
  return h;
}

/** Offset of the (first) Message-Authenticator's value in a packet, or -1. */
function messageAuthenticatorOffset(packet: Buffer): number {
  let off = HEADER_LENGTH;
  const end = packet.readUInt16BE(2);
  while (off + 2 <= end) {
    const len = packet[off + 1]!;
    if (len < 2) return -1;
    if (packet[off] === MA_TYPE && len === 18) return off + 2;
    off += len;
  }
  return -1;
}

export interface EncodeRequestOptions {
  code: CodeName;
  identifier: number;
  attributes: readonly AttributeInput[];
  secret: string | Buffer;
  /** Adds a signed Message-Authenticator (always for Access-Request: BlastRADIUS). */
  messageAuthenticator?: boolean;
  /** Access-Request only: the PAP password, encrypted with the request authenticator. */
  password?: string;
  /** Access-Request / Status-Server: a fixed request authenticator (tests); random otherwise. */
  authenticator?: Buffer;
}

/**
 * Builds a request. Access-Request/Status-Server get a random Request Authenticator; Accounting, CoA and Disconnect
 * requests get MD5(code+id+length+16 zeros+attributes+secret) (RFC 2866 §3, RFC 5176 §3.5), with the
 * Message-Authenticator computed first over the zeroed authenticator.
 */
export function encodeRequest(o: EncodeRequestOptions): Buffer {
  const secret = Buffer.from(o.secret);
  const code = CODE[o.code];
  const randomAuth = o.code === 'Access-Request' || o.code === 'Status-Server';
  const authenticator = randomAuth ? (o.authenticator ?? randomBytes(16)) : ZERO16;
  const parts: Buffer[] = [];
  if (o.password !== undefined) {
    if (o.code !== 'Access-Request') throw new RadiusPacketError('a password belongs in an Access-Request');
    const enc = encryptPassword(o.password, secret, authenticator);
    parts.push(Buffer.from([2, enc.length + 2]), enc);
  }
  parts.push(encodeAttributes(o.attributes));
  const withMa = o.messageAuthenticator ?? o.code === 'Access-Request';
  if (withMa) parts.push(Buffer.from([MA_TYPE, 18]), ZERO16);
  const body = Buffer.concat(parts);
  const length = HEADER_LENGTH + body.length;
  if (length > MAX_PACKET_LENGTH) throw new RadiusPacketError(`packet of ${length} bytes exceeds ${MAX_PACKET_LENGTH}`);
  const packet = Buffer.concat([header(code, o.identifier, length, authenticator), body]);
  if (withMa) hmacMd5(secret, packet).copy(packet, length - 16);
  if (!randomAuth) md5(packet, secret).copy(packet, 4);
  return packet;
}

/**
 * Builds a reply to `request` (ACK/NAK, Accounting-Response, or a test server's Access-Accept): Message-Authenticator
 * over the packet with the request's authenticator in place (RFC 3579 §3.2), then the Response Authenticator
 * MD5(code+id+length+request authenticator+attributes+secret). Proxy-State attributes are copied back (RFC 2865 §5.33).
 */
export function encodeResponse(o: {
  code: CodeName;
  request: RadiusPacket;
  attributes: readonly AttributeInput[];
  secret: string | Buffer;
  messageAuthenticator?: boolean;
}): Buffer {
  const secret = Buffer.from(o.secret);
  const parts: Buffer[] = [encodeAttributes(o.attributes)];
  for (const a of o.request.attributes)
    if (a.vendor === 0 && a.type === 33) parts.push(Buffer.from([33, a.value.length + 2]), a.value);
  const withMa = o.messageAuthenticator ?? false;
  if (withMa) parts.push(Buffer.from([MA_TYPE, 18]), ZERO16);
  const body = Buffer.concat(parts);
  const length = HEADER_LENGTH + body.length;
  if (length > MAX_PACKET_LENGTH) throw new RadiusPacketError(`packet of ${length} bytes exceeds ${MAX_PACKET_LENGTH}`);
  const packet = Buffer.concat([header(CODE[o.code], o.request.identifier, length, o.request.authenticator), body]);
  if (withMa) hmacMd5(secret, packet).copy(packet, length - 16);
  md5(packet, secret).copy(packet, 4);
  return packet;
}

/** Parses a datagram. Bytes past the Length field are ignored (RFC 2865 §3); everything else malformed is refused. */
export function decodePacket(data: Buffer): RadiusPacket {
  if (data.length < HEADER_LENGTH) throw malformed(`packet of ${data.length} bytes is shorter than the 20-byte header`);
  const length = data.readUInt16BE(2);
  if (length < HEADER_LENGTH || length > MAX_PACKET_LENGTH) throw malformed(`bad Length field ${length}`);
  if (length > data.length) throw malformed(`Length field ${length} exceeds the ${data.length} bytes received`);
  const raw = Buffer.from(data.subarray(0, length));
  const attributes: RawAttribute[] = [];
  let off = HEADER_LENGTH;
  while (off < length) {
    if (off + 2 > length) throw malformed(`truncated attribute header at offset ${off}`);
    const type = raw[off]!;
    const len = raw[off + 1]!;
    if (len < 2 || off + len > length) throw malformed(`attribute ${type} has bad length ${len} at offset ${off}`);
    const value = raw.subarray(off + 2, off + len);
    if (type === VENDOR_SPECIFIC && value.length >= 4) {
      const vendor = value.readUInt32BE(0);
      const subs = splitVendorAttributes(vendor, value.subarray(4));
      if (subs) attributes.push(...subs);
      else attributes.push({ vendor: 0, type, value });
    } else {
      if (type === MA_TYPE && len !== 18) throw malformed(`Message-Authenticator of ${len - 2} bytes`);
      attributes.push({ vendor: 0, type, value });
    }
    off += len;
  }
  return { code: raw[0]!, identifier: raw[1]!, authenticator: raw.subarray(4, 20), attributes, raw };
}

/** The usual one-byte-type, one-byte-length vendor format; undefined when the bytes do not follow it. */
function splitVendorAttributes(vendor: number, data: Buffer): RawAttribute[] | undefined {
  const out: RawAttribute[] = [];
  let off = 0;
  while (off < data.length) {
    if (off + 2 > data.length) return undefined;
    const len = data[off + 1]!;
    if (len < 2 || off + len > data.length) return undefined;
    out.push({ vendor, type: data[off]!, value: data.subarray(off + 2, off + len) });
    off += len;
  }
  return out.length > 0 ? out : undefined;
}

/** Whether a request's authenticator and Message-Authenticator (if any) are right for `secret`. */
export function verifyRequest(
  packet: RadiusPacket,
  secret: string | Buffer,
): { ok: true; messageAuthenticator: boolean } | { ok: false; reason: string } {
  const s = Buffer.from(secret);
  const name = codeName(packet.code);
  const maOffset = messageAuthenticatorOffset(packet.raw);
  if (name === 'Access-Request' || name === 'Status-Server') {
    if (maOffset >= 0 && !checkMa(packet.raw, maOffset, s, packet.authenticator))
      return { ok: false, reason: 'bad Message-Authenticator' };
    return { ok: true, messageAuthenticator: maOffset >= 0 };
  }
  const zeroed = Buffer.from(packet.raw);
  ZERO16.copy(zeroed, 4);
  if (!equalConstantTime(md5(zeroed, s), packet.authenticator))
    return { ok: false, reason: 'bad Request Authenticator' };
  if (maOffset >= 0 && !checkMa(packet.raw, maOffset, s, ZERO16))
    return { ok: false, reason: 'bad Message-Authenticator' };
  return { ok: true, messageAuthenticator: maOffset >= 0 };
}

/** Whether `response` answers `request` (same Identifier, a reply code) and is signed with `secret`. */
export function verifyResponse(
  response: RadiusPacket,
  request: Buffer,
  secret: string | Buffer,
): { ok: true } | { ok: false; reason: string } {
  const s = Buffer.from(secret);
  if (response.identifier !== request[1]) return { ok: false, reason: 'Identifier does not match' };
  const requestAuth = request.subarray(4, 20);
  const copy = Buffer.from(response.raw);
  requestAuth.copy(copy, 4);
  if (!equalConstantTime(md5(copy, s), response.authenticator))
    return { ok: false, reason: 'bad Response Authenticator' };
  const maOffset = messageAuthenticatorOffset(response.raw);
  if (maOffset >= 0 && !checkMa(response.raw, maOffset, s, requestAuth))
    return { ok: false, reason: 'bad Message-Authenticator' };
  return { ok: true };
}

function checkMa(raw: Buffer, maOffset: number, secret: Buffer, authenticator: Buffer): boolean {
  const copy = Buffer.from(raw);
  authenticator.copy(copy, 4);
  ZERO16.copy(copy, maOffset);
  return equalConstantTime(hmacMd5(secret, copy), raw.subarray(maOffset, maOffset + 16));
}

/** RFC 2865 §5.2 User-Password hiding. Passwords of 1 to 128 bytes. */
export function encryptPassword(password: string, secret: Buffer, authenticator: Buffer): Buffer {
  const p = Buffer.from(password, 'utf8');
  if (p.length === 0 || p.length > 128) throw new RadiusPacketError('a PAP password is 1 to 128 bytes');
  const padded = Buffer.alloc(Math.ceil(p.length / 16) * 16);
  p.copy(padded);
  const out = Buffer.alloc(padded.length);
  let prev = authenticator;
  for (let i = 0; i < padded.length; i += 16) {
    const b = md5(secret, prev);
    for (let j = 0; j < 16; j++) out[i + j] = padded[i + j]! ^ b[j]!;
    prev = out.subarray(i, i + 16);
  }
  return out;
}

/** The reverse of encryptPassword (the test server and the tests use it). */
export function decryptPassword(hidden: Buffer, secret: Buffer, authenticator: Buffer): string {
  if (hidden.length === 0 || hidden.length % 16 !== 0 || hidden.length > 128)
    throw malformed('bad User-Password length');
  const out = Buffer.alloc(hidden.length);
  let prev = authenticator;
  for (let i = 0; i < hidden.length; i += 16) {
    const b = md5(secret, prev);
    for (let j = 0; j < 16; j++) out[i + j] = hidden[i + j]! ^ b[j]!;
    prev = hidden.subarray(i, i + 16);
  }
  const end = out.indexOf(0);
  return out.subarray(0, end < 0 ? out.length : end).toString('utf8');
}

/** The largest byte limit a RADIUS reply or CoA sets: 2^53 − 1, the largest integer a JSON number carries exactly. */
export const MAX_OCTET_LIMIT = BigInt(Number.MAX_SAFE_INTEGER);

/** Typed reads of a decoded packet's attributes by dictionary name. */
export class AttributeReader {
  constructor(readonly attributes: readonly RawAttribute[]) {}

  all(name: string): Buffer[] {
    const d = def(name);
    return this.attributes.filter((a) => a.vendor === d.vendor && a.type === d.type).map((a) => a.value);
  }

  has(name: string): boolean {
    return this.all(name).length > 0;
  }

  string(name: string): string | undefined {
    const v = this.all(name)[0];
    return v === undefined ? undefined : v.toString('utf8');
  }

  /** An integer attribute; a value of the wrong size is an error, not a guess. */
  integer(name: string): number | undefined {
    const v = this.all(name)[0];
    if (v === undefined) return undefined;
    if (v.length !== 4) throw malformed(`${name} has ${v.length} bytes, not 4`);
    return v.readUInt32BE(0);
  }

  ipaddr(name: string): string | undefined {
    const v = this.all(name)[0];
    if (v === undefined) return undefined;
    if (v.length !== 4) throw malformed(`${name} has ${v.length} bytes, not 4`);
    return [...v].join('.');
  }

  /**
   * An octet limit split into a 32-bit attribute and its Gigawords companion: low + high × 2^32, at most
   * MAX_OCTET_LIMIT. Gigawords reach 2^64; a larger limit (0xffffffff gigawords is the usual "no limit") is clamped
   * rather than refused: 8 PiB is past anything a router meters, and every count sluice reports (JSON, ubus, MQTT)
   * stays exact.
   */
  octets(lowName: string, gigawordsName: string): bigint | undefined {
    const low = this.integer(lowName);
    const high = this.integer(gigawordsName);
    if (low === undefined && high === undefined) return undefined;
    const total = (BigInt(high ?? 0) << 32n) + BigInt(low ?? 0);
    return total > MAX_OCTET_LIMIT ? MAX_OCTET_LIMIT : total;
  }

  /** Attributes the dictionary does not know, as "vendor:type" (for Unsupported-Attribute answers and logs). */
  unknown(): RawAttribute[] {
    return this.attributes.filter((a) => attributeByCode(a.vendor, a.type) === undefined);
  }
}

/** Splits a 64-bit octet count into [low 32 bits, gigawords] (RFC 2869 §5.1). */
export function splitOctets(total: bigint): [low: number, gigawords: number] {
  const t = total < 0n ? 0n : total;
  return [Number(t & 0xffffffffn), Number((t >> 32n) & 0xffffffffn)];
}
