import { SluiceError } from '../errors.ts';
import type { SafetyNet } from './types.ts';

/**
 * Builds the openNDS `ndsctl auth` arguments for a safety net:
 *   ndsctl auth <mac|token> <session_minutes> <up_rate> <down_rate> <up_quota_KiB> <down_quota_KiB> [custom]
 * openNDS 9.x (src/ndsctl_thread.c ndsctl_auth, src/auth.c auth_change_state) reads 0 or "" as "the global
 * default", not "unlimited" (session default 1440 min). So a limit the caller does not want is passed as a large
 * explicit value, never 0.
 *
 * Rates are always "0" (= the admin's global setting, normally no limit): openNDS 9.10 freezes a client's upload
 * counter once a per-client upload rate limit is set, and sluice meters with those counters. A huge explicit rate
 * would still install the limiter. Shaping belongs in the portal's global configuration.
 */

/** ~10 years. openNDS computes `60 * minutes` into a C int, which overflows above 35,791,394 minutes. */
export const UNLIMITED_SESSION_MINUTES = 5_256_000;
/** 1 PiB in KiB: never reached in one session, far from any integer limit. */
export const UNLIMITED_QUOTA_KIB = 1_099_511_627_776;
/** ndsctl joins its arguments into a 256-byte buffer (each piece into 128 bytes) and truncates silently. */
const MAX_JOINED_ARGS = 255;
const MAX_CUSTOM = 100;
/** openNDS prints `custom` into its JSON unescaped: quotes, backslashes and control characters would corrupt it. */
const CUSTOM_SAFE = /^[\x20-\x7e]*$/;
const CUSTOM_FORBIDDEN = /[,"\\]/;

/** `target`: the client's MAC, or its token (tokens.ts: openNDS finds a token without hashing every client). */
export function openNdsAuthArgs(target: string, net: SafetyNet = {}): string[] {
  const minutes = wholePositive(net.sessionMinutes, 'sessionMinutes', UNLIMITED_SESSION_MINUTES);
  const upQuota = wholePositive(net.uploadQuotaKiB, 'uploadQuotaKiB', UNLIMITED_QUOTA_KIB);
  const downQuota = wholePositive(net.downloadQuotaKiB, 'downloadQuotaKiB', UNLIMITED_QUOTA_KIB);
  const args = ['auth', target, String(minutes), '0', '0', String(upQuota), String(downQuota)];
  if (net.custom !== undefined && net.custom !== '') {
    const custom = net.custom;
    if (
      typeof custom !== 'string' ||
      custom.length > MAX_CUSTOM ||
      !CUSTOM_SAFE.test(custom) ||
      CUSTOM_FORBIDDEN.test(custom)
    ) {
      throw new SluiceError(
        'ERR_INVALID_ARGUMENT',
        `safety net custom string must be at most ${MAX_CUSTOM} printable ASCII characters without comma, ` +
          'quote or backslash',
        { details: { option: 'custom' } },
      );
    }
    args.push(custom);
  }
  const joined = args.slice(1).join(',').length;
  if (joined > MAX_JOINED_ARGS) {
    throw new SluiceError(
      'ERR_INVALID_ARGUMENT',
      `ndsctl auth arguments too long (${joined} > ${MAX_JOINED_ARGS} bytes)`,
    );
  }
  return args;
}

/** Rounded up (a limit never shrinks below what was asked) and capped at the "unlimited" value. */
function wholePositive(value: number | undefined, name: string, unlimited: number): number {
  if (value === undefined) return unlimited;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new SluiceError(
      'ERR_INVALID_ARGUMENT',
      `safety net ${name} must be a positive number (0 would mean the portal's default)`,
      {
        details: { option: name },
      },
    );
  }
  return Math.min(Math.ceil(value), unlimited);
}
