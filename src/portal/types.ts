import type { ClientRates } from './rates.ts';
/** Which captive portal prints the `ndsctl json` we read: their formats and units differ (docs: captive-portal.md). */
export type PortalFlavour = 'opennds' | 'nodogsplash';

/**
 * Portal states in which the client's gate is open: its traffic passes and is counted. The valve does not auth them
 * (openNDS refuses, and a re-auth would reset the counters); the meter treats any other state as a closed gate.
 */
export const GATE_OPEN_STATES = ['Authenticated', 'Trusted', 'AuthBlocked'] as const;

/** One client as the portal reports it, in sluice's units (bytes, unix seconds). */
export interface PortalClient {
  /** Lowercase, colon-separated (aa:bb:cc:dd:ee:ff). */
  mac: string;
  ip: string | null;
  token: string | null;
  /** The portal's own word: 'Preauthenticated' | 'Authenticated' | 'Trusted' | 'Blocked' | 'AuthBlocked' | … */
  state: string;
  /** Bytes counted since this client's last auth (counters are per auth epoch). IP-level, IPv4 only on openNDS. */
  downloadBytes: number;
  uploadBytes: number;
  /** Unix seconds; null when the portal reports none (openNDS "0"/"null", nodogsplash 0). */
  sessionStart: number | null;
  sessionEnd: number | null;
  lastActive: number | null;
}

export interface PortalSnapshot {
  flavour: PortalFlavour;
  clients: PortalClient[];
  /**
   * `client_list_length` (openNDS) or `client_length` (nodogsplash): clients.length once parsed, more when the portal
   * listed a MAC more than once (each MAC is its last listing in `clients`).
   */
  declaredCount: number;
  /**
   * The MACs the portal trusts (openNDS's `trusted` list, its trustedmac setting; clients listed Trusted), canonical.
   * Absent where the listing was not read on the main thread.
   */
  trusted?: readonly string[];
}

/** Optional per-auth limits handed to the portal so it closes the gate by itself if sluice is gone. */
export interface SafetyNet {
  sessionMinutes?: number;
  downloadQuotaKiB?: number;
  uploadQuotaKiB?: number;
  /**
   * Free text the portal stores with the client (openNDS `custom`); no commas, quotes, backslashes or control chars.
   */
  custom?: string;
  /** A data session's exact bytes left: the kernel quota's limit (GateBrake), not handed to the portal. */
  dataBytes?: number;
  /** The session's speed tier (GateShaper): set in the kernel just before the auth, not handed to the portal. */
  rates?: ClientRates;
}

/**
 * A brake under the portal's gate (kernel-quota.ts): told inside the auth's queue slot just before a data session's
 * auth (where the portal's counters start at 0) and inside the deauth's slot right after it, so a brake change never
 * races the next auth of the same client. Must not throw.
 */
/**
 * The per-client rates under the portal's gate (shaper.ts), told in the same queue slots as the brake: before the
 * auth of a session with rates, after every deauth. Must not throw.
 */
export interface GateShaper {
  set(client: { mac: string; ip: string; downBps: number | null; upBps: number | null }): Promise<void>;
  remove(mac: string): Promise<void>;
}

export interface GateBrake {
  beforeAuth(mac: string, ip: string | null, limitBytes: number): Promise<void>;
  afterDeauth(mac: string): Promise<void>;
}

/**
 * The kernel's per-client counters under the gate (kernel-counting.ts), told in the same queue slots as the brake but
 * before every auth, time sessions' too (the meter reads every paying client's usage from them): fresh counters
 * just before the auth, so every byte through the gate is counted from 0; removed after every deauth. `ip` is the
 * portal's address for the client (null: none, then the client stays uncounted until the meter's listing gives one).
 * Must not throw.
 */
export interface GateCounter {
  beforeAuth(mac: string, ip: string | null): Promise<void>;
  afterDeauth(mac: string): Promise<void>;
  /** The auth was refused, the gate closed: the counters go as after a deauth, but the portal's list is as it was. */
  afterRefusal?(mac: string): Promise<void>;
}

/**
 * The IPv6 gate (ipv6-gate.ts): a client's IPv6 opened once its gate is (by sluice's auth, or found open already) and
 * closed, with its forwarded IPv4 stopped, before its deauth. Must not throw.
 */
export interface GateIpv6 {
  open(mac: string): Promise<void>;
  /** Whether the client's IPv6 passes now (the valve opens it with the quota, ahead of the auth, when it does not). */
  isOpen(mac: string): boolean;
  /** An open() made ahead of an auth that did not open the gate, taken back (no stop: ipv6-gate.ts). */
  withdraw(mac: string): Promise<void>;
  /** Before the deauth: stops the client's forwarded traffic too, until released() (ipv6-gate.ts). */
  close(mac: string): Promise<void>;
  /** The portal answered the deauth, or shows the client closed: the stop close() began goes. */
  released?(mac: string): Promise<void>;
  /** The MACs the portal trusts now (PortalSnapshot.trusted): their IPv6 passes as their IPv4 does. */
  trusted?(macs: readonly string[]): Promise<void>;
}
