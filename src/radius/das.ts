/**
 * RFC 5176 Dynamic Authorization, the protocol part: what a verified Disconnect-Request or CoA-Request asks for, and
 * the answers (no sockets and no sessions here; das-server.ts owns the UDP side, the caller matches sessions).
 *
 * Identification: Acct-Session-Id, User-Name, Calling-Station-Id, Framed-IP-Address; every one given must match.
 * None given → NAK Missing-Attribute (402); a NAS-Identifier or NAS-IP-Address that is not ours → NAK
 * NAS-Identification-Mismatch (403).
 *
 * Replay (RFC 5176 §3.5): a captured request must not act on a session that did not exist when it was made. A request
 * is bound either to the session it names by Acct-Session-Id (unique per session: a replay meets that same session,
 * already ended or set to those same limits), or to a time by Event-Timestamp (the listener drops one more than its
 * window off; the caller matches only sessions created by then). With neither → NAK Missing-Attribute (402). CoA sets
 * new totals: Session-Timeout (seconds from the session's start), ChilliSpot-Max-Total-Octets/-Gigawords or
 * Mikrotik-Total-Limit/-Gigawords (bytes; the smaller if both), and new rates: WISPr-Bandwidth-Max-Down/-Up,
 * Mikrotik-Rate-Limit (read by the caller, src/upstream/radius/coa-rates.ts, where a zero lifts a tier: this library
 * only lets them through and says they are there). Any other attribute → NAK Unsupported-Attribute (401); Service-Type
 * Authorize-Only → NAK Unsupported-Service (405).
 */
import { attributeByCode, ERROR_CAUSE } from './dictionary.ts';
import { macFromStationId } from './nas.ts';
import { AttributeReader, CODE, RadiusPacketError, type AttributeInput, type RadiusPacket } from './packet.ts';

export interface DasAnswer {
  code: 'Disconnect-ACK' | 'Disconnect-NAK' | 'CoA-ACK' | 'CoA-NAK';
  attributes: AttributeInput[];
  /** For logs and stats: what was done or why not. */
  outcome:
    | 'disconnected'
    | 'changed'
    | 'not-found'
    | 'missing-attribute'
    | 'unsupported-attribute'
    | 'unsupported-service'
    | 'nas-mismatch'
    | 'invalid-request'
    | 'failed';
  sessions: string[];
  /** For the log: what was wrong with a refused value, when the outcome alone does not say. */
  reason?: string;
}

/**
 * What a well-formed request asks for: the sessions it names (every field given must match) and, for CoA, the change.
 */
export interface DasRequest {
  packet: RadiusPacket;
  disconnect: boolean;
  sessionId: string | undefined;
  user: string | undefined;
  /** From Calling-Station-Id, in sluice's form (aa:bb:cc:dd:ee:ff). */
  mac: string | undefined;
  ip: string | undefined;
  /** Event-Timestamp (s since the epoch): sessions created after it are not the ones the request means. */
  eventTimestamp: number | undefined;
  /**
   * CoA: the new totals, empty when it carries none; null when one is malformed (Invalid-Request, answered only once
   * some session matched: a request for no session is Session-Context-Not-Found first). Disconnect: empty.
   */
  limits: { seconds?: bigint; bytes?: bigint } | null;
  /** CoA: it carries a rate attribute (COA_RATE_ATTRIBUTES), for the caller to read. Disconnect: false. */
  rates: boolean;
}

/** Our NAS identity, to refuse a request meant for another NAS. */
export interface DasNas {
  identifier: string;
  /** '' = not known: NAS-IP-Address is then not compared. */
  ip: string;
}

const IDENTIFYING = new Set(['User-Name', 'Acct-Session-Id', 'Calling-Station-Id', 'Framed-IP-Address']);
/** Attributes RFC 5176 §3.6 allows that carry no instruction for sluice (accepted and ignored). */
const NEUTRAL = new Set([
  'NAS-IP-Address',
  'NAS-IPv6-Address',
  'NAS-Identifier',
  'NAS-Port',
  'NAS-Port-Id',
  'NAS-Port-Type',
  'Called-Station-Id',
  'Event-Timestamp',
  'Message-Authenticator',
  'Proxy-State',
  'State',
  'Class',
  'Acct-Multi-Session-Id',
  'Reply-Message',
  'Acct-Interim-Interval',
]);
const COA_LIMITS = new Set([
  'Session-Timeout',
  'ChilliSpot-Max-Total-Octets',
  'ChilliSpot-Max-Total-Gigawords',
  'Mikrotik-Total-Limit',
  'Mikrotik-Total-Limit-Gigawords',
]);
/** A CoA's new speed tier: the attributes a voucher's Access-Accept sets it with (bits per second; MikroTik's text). */
const COA_RATE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'WISPr-Bandwidth-Max-Down',
  'WISPr-Bandwidth-Max-Up',
  'Mikrotik-Rate-Limit',
]);

/** The NAK for a request (Disconnect-NAK or CoA-NAK), carrying its Error-Cause. */
export function dasNak(
  request: RadiusPacket,
  cause: keyof typeof ERROR_CAUSE,
  outcome: DasAnswer['outcome'],
): DasAnswer {
  const code = request.code === CODE['Disconnect-Request'] ? 'Disconnect-NAK' : 'CoA-NAK';
  return { code, attributes: [['Error-Cause', cause]], outcome, sessions: [] };
}

/** The ACK for a request that acted on `sessions`. */
export function dasAck(request: RadiusPacket, outcome: 'disconnected' | 'changed', sessions: string[]): DasAnswer {
  const code = request.code === CODE['Disconnect-Request'] ? 'Disconnect-ACK' : 'CoA-ACK';
  return { code, attributes: [], outcome, sessions };
}

/** Pure: a verified request → what it asks for, or the NAK that refuses it before any session is looked at. */
export function readDasRequest(request: RadiusPacket, nas: DasNas): { request: DasRequest } | { answer: DasAnswer } {
  const disconnect = request.code === CODE['Disconnect-Request'];
  const no = (cause: keyof typeof ERROR_CAUSE, outcome: DasAnswer['outcome']): { answer: DasAnswer } => ({
    answer: dasNak(request, cause, outcome),
  });
  const r = new AttributeReader(request.attributes);

  for (const a of request.attributes) {
    const name = attributeByCode(a.vendor, a.type)?.name;
    if (
      name === undefined ||
      !(
        IDENTIFYING.has(name) ||
        NEUTRAL.has(name) ||
        name === 'Service-Type' ||
        (!disconnect && (COA_LIMITS.has(name) || COA_RATE_ATTRIBUTES.has(name)))
      )
    ) {
      return no('Unsupported-Attribute', 'unsupported-attribute');
    }
  }
  let sessionId: string | undefined, user: string | undefined, station: string | undefined, ip: string | undefined;
  let serviceType: number | undefined, nasIp: string | undefined, eventTimestamp: number | undefined;
  try {
    eventTimestamp = r.integer('Event-Timestamp');
    sessionId = r.string('Acct-Session-Id');
    user = r.string('User-Name');
    station = r.string('Calling-Station-Id');
    ip = r.ipaddr('Framed-IP-Address');
    serviceType = r.integer('Service-Type');
    nasIp = r.ipaddr('NAS-IP-Address');
  } catch (err) {
    if (err instanceof RadiusPacketError) return no('Invalid-Request', 'invalid-request');
    throw err;
  }
  if (serviceType === 17) return no('Unsupported-Service', 'unsupported-service');
  if (serviceType !== undefined) return no('Unsupported-Attribute', 'unsupported-attribute');
  const nasId = r.string('NAS-Identifier');
  if ((nasId !== undefined && nasId !== nas.identifier) || (nasIp !== undefined && nas.ip !== '' && nasIp !== nas.ip)) {
    return no('NAS-Identification-Mismatch', 'nas-mismatch');
  }
  if (sessionId === undefined && user === undefined && station === undefined && ip === undefined) {
    return no('Missing-Attribute', 'missing-attribute');
  }
  // Unbound: a replay of it, seconds or days later, would act on whatever session has that MAC, user or IP by then.
  if (sessionId === undefined && eventTimestamp === undefined) return no('Missing-Attribute', 'missing-attribute');
  const mac = station === undefined ? undefined : macFromStationId(station);
  if (mac === null) return no('Session-Context-Not-Found', 'not-found');
  const rates =
    !disconnect &&
    request.attributes.some((a) => COA_RATE_ATTRIBUTES.has(attributeByCode(a.vendor, a.type)?.name ?? ''));
  return {
    request: {
      packet: request,
      disconnect,
      sessionId,
      user,
      mac,
      ip,
      eventTimestamp,
      limits: disconnect ? {} : coaLimits(r),
      rates,
    },
  };
}

function coaLimits(r: AttributeReader): { seconds?: bigint; bytes?: bigint } | null {
  let seconds: number | undefined;
  let bytes: bigint | undefined;
  try {
    seconds = r.integer('Session-Timeout');
    const limits = [
      r.octets('ChilliSpot-Max-Total-Octets', 'ChilliSpot-Max-Total-Gigawords'),
      r.octets('Mikrotik-Total-Limit', 'Mikrotik-Total-Limit-Gigawords'),
    ].filter((v): v is bigint => v !== undefined);
    bytes = limits.length === 0 ? undefined : limits.reduce((a, b) => (a < b ? a : b));
  } catch {
    return null;
  }
  return { ...(seconds !== undefined && { seconds: BigInt(seconds) }), ...(bytes !== undefined && { bytes }) };
}
