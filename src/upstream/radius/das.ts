/**
 * What a verified Disconnect-Request or CoA-Request does to the live sessions (the request itself is read by
 * src/radius/das.ts; the UDP side is src/radius/das-server.ts). A request that matches no live session → NAK
 * Session-Context-Not-Found (503), as does one whose Event-Timestamp is older than the session (a replay: see
 * src/radius/das.ts). Disconnect ends every matched session with cause `disconnect` and answers once their
 * gates are closed. CoA sets the new totals and rates on every matched session. What would refuse part of it refuses
 * all of it, before anything changes: a byte limit for a time session (Unsupported-Attribute), a malformed or unusable
 * value (Invalid-Request), rates on a router that cannot set them (Resources-Unavailable). The rates go first, by the
 * one rate-change path (ubus `change`), and the totals only once they are in force: a change the kernel refused leaves
 * the totals as they were too.
 */
import { isLive, type EndCause, type Session } from '../../sessions/index.ts';
import {
  AttributeReader,
  dasAck,
  dasNak,
  readDasRequest,
  type DasAnswer,
  type RadiusPacket,
} from '../../radius/index.ts';
import { coaRates, type DasRates, type RateChange } from './coa-rates.ts';

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
  /** Speed tiers; absent: this router sets none (a CoA's rates → Resources-Unavailable). */
  rates?: DasRates;
}

export async function answerDas(packet: RadiusPacket, ctx: DasContext): Promise<DasAnswer> {
  const read = readDasRequest(packet, { identifier: ctx.nasIdentifier, ip: ctx.nasIp });
  if ('answer' in read) return read.answer;
  const { sessionId, user, mac, ip, eventTimestamp, limits } = read.request;
  // A session bought after the request was made is not the one it means (a replayed capture): Event-Timestamp has
  // whole seconds, so anything created within that second still matches.
  const madeBy = eventTimestamp === undefined ? Infinity : (eventTimestamp + 1) * 1000;

  let candidates: Session[];
  if (sessionId !== undefined) candidates = [ctx.sessions.get(sessionId)].filter((s): s is Session => s !== null);
  else if (mac) candidates = [ctx.sessions.byMac(mac)].filter((s): s is Session => s !== null);
  else candidates = ctx.sessions.list({ state: 'ACTIVE' });
  const matched = candidates.filter(
    (s) =>
      isLive(s) &&
      s.createdAt < madeBy &&
      (sessionId === undefined || s.id === sessionId) &&
      (mac === undefined || s.mac === mac) &&
      (user === undefined || ctx.userNameOf(s) === user) &&
      (ip === undefined || s.ip === ip),
  );
  if (matched.length === 0) return dasNak(packet, 'Session-Context-Not-Found', 'not-found');

  if (read.request.disconnect) {
    const ended: Session[] = [];
    for (const s of matched) {
      const e = await ctx.sessions.end(s.id, 'disconnect');
      if (e) ended.push(e);
    }
    if (ended.length === 0) return dasNak(packet, 'Session-Context-Not-Found', 'not-found');
    await ctx.closeGates?.(ended);
    return dasAck(
      packet,
      'disconnected',
      ended.map((s) => s.id),
    );
  }

  if (limits === null) return dasNak(packet, 'Invalid-Request', 'invalid-request');
  let rates: RateChange = {};
  if (read.request.rates) {
    const r = coaRates(new AttributeReader(packet.attributes));
    // The reader's words are an Accept's ("… ignored"): here the whole request is refused for it.
    if (!r.ok) return { ...dasNak(packet, 'Invalid-Request', 'invalid-request'), reason: `rate refused: ${r.reason}` };
    rates = r.change;
  }
  const setsRates = rates.downBps !== undefined || rates.upBps !== undefined;
  if (!setsRates && limits.seconds === undefined && limits.bytes === undefined)
    return dasNak(packet, 'Invalid-Request', 'invalid-request');
  if (limits.bytes !== undefined && matched.some((s) => s.metric === 'seconds')) {
    return dasNak(packet, 'Unsupported-Attribute', 'unsupported-attribute');
  }
  // Resources-Unavailable, not Unsupported-Extension: that one says the NAS does not do CoA at all, and totals it does.
  const shaper = ctx.rates;
  if (setsRates && (shaper === undefined || !shaper.usable())) return dasNak(packet, 'Resources-Unavailable', 'failed');
  const changed: string[] = [];
  for (const s of matched) {
    try {
      if (setsRates) {
        await shaper!.change(s, rates);
        // tc or nft refused it and the shaper turned off: not in force, so the totals stay as they were too.
        if (!shaper!.usable()) continue;
      }
      if (limits.seconds !== undefined || limits.bytes !== undefined) await ctx.sessions.setLimits(s.id, limits);
      changed.push(s.id);
    } catch {
      // Ended meanwhile, the journal refused, or the change path did: reported below if nothing changed.
    }
  }
  if (changed.length === 0) return dasNak(packet, 'Resources-Unavailable', 'failed');
  return dasAck(packet, 'changed', changed);
}
