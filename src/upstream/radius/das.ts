/**
 * RFC 5176 Dynamic Authorization: what a verified Disconnect-Request or CoA-Request does, as a function of the request
 * and the live sessions (no sockets here; das-server.ts owns the UDP side, duplicate detection and secrets).
 *
 * Identification: Acct-Session-Id, User-Name, Calling-Station-Id, Framed-IP-Address; every one given must match.
 * None given → NAK Missing-Attribute (402); nothing matches → NAK Session-Context-Not-Found (503); a NAS-Identifier or
 * NAS-IP-Address that is not ours → NAK NAS-Identification-Mismatch (403). Disconnect ends every matched session with
 * cause `disconnect`. CoA sets new totals: Session-Timeout (seconds from the session's start), ChilliSpot-Max-Total-
 * Octets/-Gigawords or Mikrotik-Total-Limit/-Gigawords (bytes; the smaller if both). Any other attribute → NAK
 * Unsupported-Attribute (401); Service-Type Authorize-Only → NAK Unsupported-Service (405).
 */
import type { EndCause, Session } from '../../sessions/model.ts';
import { isLive } from '../../sessions/model.ts';
import { attributeByCode, ERROR_CAUSE } from '../../radius/dictionary.ts';
import { AttributeReader, CODE, RadiusPacketError, type AttributeInput, type RadiusPacket } from '../../radius/packet.ts';
import { macFromStationId } from '../../radius/nas.ts';

/** The part of the session manager the DAS needs. */
export interface DasSessions {
  get(id: string): Session | null;
  byMac(mac: string): Session | null;
  list(filter: { state: 'ACTIVE' }): Session[];
  end(id: string, cause: EndCause): Promise<Session | null>;
  setLimits(id: string, change: { seconds?: bigint; bytes?: bigint }): Promise<Session>;
}

export interface DasContext {
  sessions: DasSessions;
  /** The User-Name accounting reports for a session (its user, else its MAC): what a server sends back. */
  userNameOf: (s: Session) => string;
  nasIdentifier: string;
  nasIp: string;
  /** Awaited after a Disconnect ended sessions: the gates are closed before the ACK goes out. */
  closeGates?: (sessions: Session[]) => Promise<void>;
}

export interface DasAnswer {
  code: 'Disconnect-ACK' | 'Disconnect-NAK' | 'CoA-ACK' | 'CoA-NAK';
  attributes: AttributeInput[];
  /** For logs and stats: what was done or why not. */
  outcome: 'disconnected' | 'changed' | 'not-found' | 'missing-attribute' | 'unsupported-attribute' | 'unsupported-service'
    | 'nas-mismatch' | 'invalid-request' | 'failed';
  sessions: string[];
}

const IDENTIFYING = new Set(['User-Name', 'Acct-Session-Id', 'Calling-Station-Id', 'Framed-IP-Address']);
/** Attributes RFC 5176 §3.6 allows that carry no instruction for sluice (accepted and ignored). */
const NEUTRAL = new Set(['NAS-IP-Address', 'NAS-IPv6-Address', 'NAS-Identifier', 'NAS-Port', 'NAS-Port-Id', 'NAS-Port-Type',
  'Called-Station-Id', 'Event-Timestamp', 'Message-Authenticator', 'Proxy-State', 'State', 'Class', 'Acct-Multi-Session-Id',
  'Reply-Message', 'Acct-Interim-Interval']);
const COA_LIMITS = new Set(['Session-Timeout', 'ChilliSpot-Max-Total-Octets', 'ChilliSpot-Max-Total-Gigawords',
  'Mikrotik-Total-Limit', 'Mikrotik-Total-Limit-Gigawords']);

export async function answerDas(request: RadiusPacket, ctx: DasContext): Promise<DasAnswer> {
  const disconnect = request.code === CODE['Disconnect-Request'];
  const ack = disconnect ? 'Disconnect-ACK' : 'CoA-ACK';
  const nak = disconnect ? 'Disconnect-NAK' : 'CoA-NAK';
  const no = (cause: keyof typeof ERROR_CAUSE, outcome: DasAnswer['outcome']): DasAnswer =>
    ({ code: nak, attributes: [['Error-Cause', cause]], outcome, sessions: [] });
  const r = new AttributeReader(request.attributes);

  for (const a of request.attributes) {
    const name = attributeByCode(a.vendor, a.type)?.name;
    if (name === undefined || !(IDENTIFYING.has(name) || NEUTRAL.has(name) || name === 'Service-Type' || (!disconnect && COA_LIMITS.has(name)))) {
      return no('Unsupported-Attribute', 'unsupported-attribute');
    }
  }
  let sessionId: string | undefined, user: string | undefined, station: string | undefined, ip: string | undefined;
  let serviceType: number | undefined, nasIp: string | undefined;
  try {
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
  if ((nasId !== undefined && nasId !== ctx.nasIdentifier) || (nasIp !== undefined && ctx.nasIp !== '' && nasIp !== ctx.nasIp)) {
    return no('NAS-Identification-Mismatch', 'nas-mismatch');
  }
  if (sessionId === undefined && user === undefined && station === undefined && ip === undefined) {
    return no('Missing-Attribute', 'missing-attribute');
  }
  const mac = station === undefined ? undefined : macFromStationId(station);
  if (station !== undefined && mac === null) return no('Session-Context-Not-Found', 'not-found');

  let candidates: Session[];
  if (sessionId !== undefined) candidates = [ctx.sessions.get(sessionId)].filter((s): s is Session => s !== null);
  else if (mac) candidates = [ctx.sessions.byMac(mac)].filter((s): s is Session => s !== null);
  else candidates = ctx.sessions.list({ state: 'ACTIVE' });
  const matched = candidates.filter((s) => isLive(s)
    && (sessionId === undefined || s.id === sessionId)
    && (mac === undefined || s.mac === mac)
    && (user === undefined || ctx.userNameOf(s) === user)
    && (ip === undefined || s.ip === ip));
  if (matched.length === 0) return no('Session-Context-Not-Found', 'not-found');

  if (disconnect) {
    const ended: Session[] = [];
    for (const s of matched) {
      const e = await ctx.sessions.end(s.id, 'disconnect');
      if (e) ended.push(e);
    }
    if (ended.length === 0) return no('Session-Context-Not-Found', 'not-found');
    await ctx.closeGates?.(ended);
    return { code: ack, attributes: [], outcome: 'disconnected', sessions: ended.map((s) => s.id) };
  }

  let seconds: number | undefined;
  let bytes: bigint | undefined;
  try {
    seconds = r.integer('Session-Timeout');
    const limits = [r.octets('ChilliSpot-Max-Total-Octets', 'ChilliSpot-Max-Total-Gigawords'),
      r.octets('Mikrotik-Total-Limit', 'Mikrotik-Total-Limit-Gigawords')].filter((v): v is bigint => v !== undefined);
    bytes = limits.length === 0 ? undefined : limits.reduce((a, b) => (a < b ? a : b));
  } catch {
    return no('Invalid-Request', 'invalid-request');
  }
  if (seconds === undefined && bytes === undefined) return no('Invalid-Request', 'invalid-request');
  // A byte limit cannot apply to a time session: refuse the whole request rather than apply half of it.
  if (bytes !== undefined && matched.some((s) => s.metric === 'seconds')) return no('Unsupported-Attribute', 'unsupported-attribute');
  const change = { ...(seconds !== undefined && { seconds: BigInt(seconds) }), ...(bytes !== undefined && { bytes }) };
  const changed: string[] = [];
  for (const s of matched) {
    try {
      await ctx.sessions.setLimits(s.id, change);
      changed.push(s.id);
    } catch {
      // Ended meanwhile, or the journal refused: reported below if nothing changed.
    }
  }
  if (changed.length === 0) return no('Resources-Unavailable', 'failed');
  return { code: ack, attributes: [], outcome: 'changed', sessions: changed };
}
