/**
 * NIP-01 events: the serialisation whose SHA-256 is the event id, and BIP-340 Schnorr signatures over that id
 * (https://github.com/nostr-protocol/nips/blob/master/01.md,
 * https://github.com/bitcoin/bips/blob/master/bip-0340.mediawiki). TollGate's advertisement (10021), session (1022) and
 * notice (21023) are such events, and a legacy payment (21000). Pure: no I/O; the signing key is the caller's (key.ts
 * keeps the router's). Schnorr is noble's, in the lazily loaded cashu chunk (src/cashu/loader.ts): openRouterKey loads
 * it before the door signs anything.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cashuLib } from '../../../cashu/index.ts';

/** A Nostr tag: every element a string (clients in Go and Kotlin unmarshal `[]string`; a number breaks them). */
export type NostrTag = string[];

export interface UnsignedEvent {
  /** 32-byte x-only public key, lowercase hex. */
  pubkey: string;
  /** Unix seconds. */
  created_at: number;
  kind: number;
  tags: NostrTag[];
  content: string;
}

export interface NostrEvent extends UnsignedEvent {
  /** SHA-256 of serializeEvent, lowercase hex. */
  id: string;
  /** BIP-340 signature of the id's 32 bytes, lowercase hex. */
  sig: string;
}

/** What the signer fills in: everything but pubkey, id and sig. */
export type EventTemplate = Omit<UnsignedEvent, 'pubkey'>;

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/**
 * NIP-01's `[0, pubkey, created_at, kind, tags, content]` as UTF-8 JSON without whitespace. JSON.stringify escapes
 * exactly what NIP-01 lists (`\n \" \\ \r \t \b \f`) and, beyond that, only control characters NIP-01 leaves
 * unspecified; sluice's own events carry none, and a received event with one simply fails verification.
 */
export function serializeEvent(event: UnsignedEvent): string {
  return JSON.stringify([0, event.pubkey, event.created_at, event.kind, event.tags, event.content]);
}

export function eventId(event: UnsignedEvent): string {
  return createHash('sha256').update(serializeEvent(event), 'utf8').digest('hex');
}

/** The x-only public key (hex) of a 32-byte secret key. */
export function publicKeyOf(secretKey: Uint8Array): string {
  return Buffer.from(cashuLib().schnorr.getPublicKey(secretKey)).toString('hex');
}

/** Signs `template` with `secretKey` (fresh auxiliary randomness per signature, as BIP-340 recommends). */
export function signEvent(template: EventTemplate, secretKey: Uint8Array): NostrEvent {
  const unsigned: UnsignedEvent = {
    pubkey: publicKeyOf(secretKey),
    created_at: template.created_at,
    kind: template.kind,
    tags: template.tags,
    content: template.content,
  };
  const id = eventId(unsigned);
  const sig = Buffer.from(cashuLib().schnorr.sign(Buffer.from(id, 'hex'), secretKey, randomBytes(32))).toString('hex');
  return { id, ...unsigned, sig };
}

/** The shape NIP-01 gives an event (types only; what the fields say is verifyEvent's). */
export function isEventShape(v: unknown): v is NostrEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.id === 'string' &&
    typeof e.pubkey === 'string' &&
    typeof e.sig === 'string' &&
    typeof e.content === 'string' &&
    Number.isSafeInteger(e.created_at) &&
    Number.isSafeInteger(e.kind) &&
    Array.isArray(e.tags) &&
    e.tags.every((t) => Array.isArray(t) && t.every((x) => typeof x === 'string'))
  );
}

/**
 * Whether `event` is well formed, its id is its serialisation's hash and its signature is its pubkey's. Never throws.
 */
export function verifyEvent(event: unknown): boolean {
  if (!isEventShape(event) || !HEX64.test(event.id) || !HEX64.test(event.pubkey) || !HEX128.test(event.sig))
    return false;
  if (eventId(event) !== event.id) return false;
  try {
    return cashuLib().schnorr.verify(
      Buffer.from(event.sig, 'hex'),
      Buffer.from(event.id, 'hex'),
      Buffer.from(event.pubkey, 'hex'),
    );
  } catch {
    return false;
  }
}

/** The first tag named `name`, or undefined. */
export function tagOf(event: Pick<UnsignedEvent, 'tags'>, name: string): NostrTag | undefined {
  return event.tags.find((t) => t[0] === name);
}
