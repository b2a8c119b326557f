/**
 * What each portal's `ndsctl json` looks like, in one table: the scanner, its JSON.parse fallback, the main thread's
 * parser, flavour detection and the output bound all read their keys and units from here (docs/captive-portal.md).
 * openNDS (9.x–11, src/util.c ndsctl_json_client) prints every value as a string and its `*_this_session` counters as
 * floor(bytes / 1024), although its docs say kB; nodogsplash 5.0.2 prints bare numbers and floor(bytes / 1000).
 */
import type { PortalFlavour } from './types.ts';

export interface PortalFormat {
  /** The client count, the first key of a client list. */
  countKey: string;
  downloadKey: string;
  uploadKey: string;
  /** Bytes per counter unit. */
  counterUnit: number;
  /** Keys only this portal prints, near the top of its output (flavour detection). */
  markers: readonly string[];
}

export const FORMATS: Readonly<Record<PortalFlavour, PortalFormat>> = {
  opennds: {
    countKey: 'client_list_length',
    downloadKey: 'download_this_session',
    uploadKey: 'upload_this_session',
    counterUnit: 1024,
    markers: ['client_list_length', 'gatewayname', 'download_this_session'],
  },
  nodogsplash: {
    countKey: 'client_length',
    downloadKey: 'downloaded',
    uploadKey: 'uploaded',
    counterUnit: 1000,
    markers: ['client_length', 'avg_down_speed', 'downloaded'],
  },
};

export const FLAVOURS = Object.keys(FORMATS) as PortalFlavour[];

/** Units of the counters, by flavour. */
export const COUNTER_UNIT: Readonly<Record<PortalFlavour, number>> = {
  opennds: FORMATS.opennds.counterUnit,
  nodogsplash: FORMATS.nodogsplash.counterUnit,
};

/** The flavour whose client count is `key`, if any. */
export function flavourOfCountKey(key: string): PortalFlavour | undefined {
  return FLAVOURS.find((flavour) => FORMATS[flavour].countKey === key);
}

/**
 * Portal client states as small codes (openNDS: Preauthenticated/Authenticated/Trusted/Blocked/AuthBlocked), the
 * form the usage worker passes them in; any other word is `other`.
 */
export const STATE_CODES = {
  other: 0,
  Preauthenticated: 1,
  Authenticated: 2,
  Trusted: 3,
  Blocked: 4,
  AuthBlocked: 5,
} as const;
export type PortalStateName = keyof typeof STATE_CODES;
export const STATE_NAMES: readonly PortalStateName[] = Object.entries(STATE_CODES)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name as PortalStateName);

/** The code of a portal state word. */
export function stateCodeOf(state: string): number {
  return Object.hasOwn(STATE_CODES, state) ? STATE_CODES[state as PortalStateName] : STATE_CODES.other;
}
