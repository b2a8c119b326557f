/**
 * What a TollGate `POST /` carries, whatever its Content-Type (the Android app and resellers send text/plain,
 * TollGate's portal application/json, the spec's own `curl -d` example application/x-www-form-urlencoded, some clients
 * none): the body is sniffed, never trusted by its header.
 *   - `cashuA…` / `cashuB…` (optionally `cashu:`-prefixed, as a wallet link): the token itself (HTTP-01, March 2026);
 *   - `{…}`: the legacy signed kind 21000 (`payment` tag = the token; its pubkey is the payer the 1022 names). Its
 *     signature is not checked, as TollGate's Go router does not: the token is the bearer value, the event only a
 *     wrapper;
 *   - `name=cashu…` (a browser form): the one field that holds a token.
 * The device is the request's source address, never a field of the body (a 21000's `device-identifier` is ignored).
 */
import { SluiceError } from '../../../errors.ts';
import { isEventShape, tagOf } from '../nostr/index.ts';
import { KIND_PAYMENT } from './events.ts';

export interface TollgatePayment {
  token: string;
  /** The 21000's pubkey (64 hex), when the payment came in one. */
  payer: string | null;
}

/** A token's text: the Cashu prefix and then only base64/base64url characters (V3 JSON is base64 too). */
const TOKEN = /^cashu[AB][A-Za-z0-9_\-+/=]+$/;

function invalid(message: string): SluiceError {
  return new SluiceError('ERR_TOLLGATE_REQUEST', message);
}

function tokenOf(text: string): string | null {
  let t = text.trim();
  if (/^cashu:/i.test(t)) t = t.slice('cashu:'.length);
  if (t.includes('%')) {
    try {
      t = decodeURIComponent(t);
    } catch {
      return null;
    }
  }
  return TOKEN.test(t) ? t : null;
}

export function parseTollgatePayment(body: Buffer): TollgatePayment {
  const text = body.toString('utf8').trim();
  if (text === '') throw invalid('the body is empty: POST the Cashu token (cashuA…/cashuB…) or a kind 21000 event');
  if (text.startsWith('{')) {
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch {
      throw invalid('the body starts with { but is not JSON');
    }
    if (!isEventShape(event) || event.kind !== KIND_PAYMENT)
      throw invalid(`a JSON body must be a Nostr event of kind ${KIND_PAYMENT} with a payment tag`);
    const tag = tagOf(event, 'payment');
    const token = tag?.[1] === undefined ? null : tokenOf(tag[1]);
    if (token === null) throw invalid(`the kind ${KIND_PAYMENT} event has no payment tag holding a Cashu token`);
    return { token, payer: /^[0-9a-f]{64}$/.test(event.pubkey) ? event.pubkey : null };
  }
  const raw = tokenOf(text);
  if (raw !== null) return { token: raw, payer: null };
  if (text.includes('=')) {
    for (const value of new URLSearchParams(text).values()) {
      const token = tokenOf(value);
      if (token !== null) return { token, payer: null };
    }
  }
  throw invalid('the body is neither a Cashu token (cashuA…/cashuB…) nor a kind 21000 event');
}
