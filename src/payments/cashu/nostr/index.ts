/**
 * The cashu plugin's Nostr: NIP-01 events signed with BIP-340 Schnorr, and the router's persistent key.
 * TollGate's door (tollgate/) speaks through it.
 */
export { isEventShape, signEvent, tagOf, type NostrEvent, type NostrTag } from './event.ts';
export { openRouterKey, type RouterKey } from './key.ts';
