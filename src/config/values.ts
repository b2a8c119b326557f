/**
 * Parsers for the text of UCI option values. Each returns the value or a reason (a phrase that completes
 * "<section>.<option>: …"); the loader adds the section, option and offending text. Pure.
 */

/** What a plan sells: bytes of traffic or seconds of access. */
export type Metric = 'bytes' | 'seconds';

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (reason: string): Parsed<never> => ({ ok: false, reason });

// Same words as config_get_bool in OpenWrt's /lib/functions.sh (case-sensitive there too), so the init script
// and the daemon never disagree about `enabled`.
const TRUE_WORDS = new Set(['1', 'yes', 'on', 'true', 'enabled']);
const FALSE_WORDS = new Set(['0', 'no', 'off', 'false', 'disabled']);

export function parseBool(text: string): Parsed<boolean> {
  if (TRUE_WORDS.has(text)) return ok(true);
  if (FALSE_WORDS.has(text)) return ok(false);
  return bad('must be a boolean (1/0, yes/no, on/off, true/false, enabled/disabled)');
}

export function parseInteger(text: string, min: number, max: number): Parsed<number> {
  if (!/^\d{1,15}$/.test(text)) return bad(`must be an integer from ${min} to ${max}`);
  const n = Number(text);
  return n >= min && n <= max ? ok(n) : bad(`must be an integer from ${min} to ${max}`);
}

/** Decimal seconds (fraction allowed) → whole milliseconds. */
export function parseSecondsToMs(text: string, minSeconds: number, maxSeconds: number): Parsed<number> {
  const reason = `must be a number of seconds from ${minSeconds} to ${maxSeconds}`;
  if (!/^\d{1,9}(\.\d{1,9})?$/.test(text)) return bad(reason);
  const s = Number(text);
  return s >= minSeconds && s <= maxSeconds ? ok(Math.round(s * 1000)) : bad(reason);
}

export const UINT128_MAX = (1n << 128n) - 1n;

export function parseUnsignedBigInt(text: string, max: bigint, reason: string): Parsed<bigint> {
  if (!/^\d{1,80}$/.test(text)) return bad(reason);
  const n = BigInt(text);
  return n <= max ? ok(n) : bad(`${reason}; at most ${max}`);
}

// Decimal SI prefixes are powers of 1000, IEC prefixes powers of 1024; `B` is optional. Lower-case `b` is not
// accepted (it usually means bits).
const BYTE_UNITS: ReadonlyMap<string, bigint> = new Map([
  ['', 1n],
  ['B', 1n],
  ['k', 1000n],
  ['kB', 1000n],
  ['K', 1000n],
  ['KB', 1000n],
  ['M', 1000n ** 2n],
  ['MB', 1000n ** 2n],
  ['G', 1000n ** 3n],
  ['GB', 1000n ** 3n],
  ['T', 1000n ** 4n],
  ['TB', 1000n ** 4n],
  ['Ki', 1024n],
  ['KiB', 1024n],
  ['Mi', 1024n ** 2n],
  ['MiB', 1024n ** 2n],
  ['Gi', 1024n ** 3n],
  ['GiB', 1024n ** 3n],
  ['Ti', 1024n ** 4n],
  ['TiB', 1024n ** 4n],
]);
const SECOND_UNITS: ReadonlyMap<string, bigint> = new Map([
  ['', 1n],
  ['s', 1n],
  ['m', 60n],
  ['min', 60n],
  ['h', 3600n],
  ['d', 86400n],
]);

/**
 * A positive whole number of bytes or seconds with an optional unit: `104857600`, `100MiB`, `1.5G`, `15m`, `1h`.
 * A decimal fraction is allowed only where the result is whole (`1.5KiB` = 1536, `0.5B` is rejected).
 */
export function parseQuantity(text: string, metric: Metric): Parsed<bigint> {
  const units = metric === 'bytes' ? BYTE_UNITS : SECOND_UNITS;
  const reason =
    metric === 'bytes'
      ? 'must be a positive whole number of bytes, optionally with a unit (k, M, G, T = 1000^n; Ki, Mi, Gi, Ti = ' +
        '1024^n; B optional)'
      : 'must be a positive whole number of seconds, optionally with a unit (s, m or min, h, d)';
  const m = /^(\d{1,30})(?:\.(\d{1,30}))? ?([A-Za-z]*)$/.exec(text);
  if (!m) return bad(reason);
  const multiplier = units.get(m[3]!);
  if (multiplier === undefined) return bad(reason);
  const fraction = m[2] ?? '';
  const scaled = BigInt(m[1]! + fraction) * multiplier;
  const divisor = 10n ** BigInt(fraction.length);
  if (scaled % divisor !== 0n) return bad(`${reason}; the result must be whole`);
  const value = scaled / divisor;
  return value > 0n ? ok(value) : bad(reason);
}

/**
 * Splits a command line into argv like a POSIX shell word list without expansions: whitespace separates words,
 * '…' is literal, "…" takes backslash escapes of \ " $ ` and newline, a bare backslash takes the next character.
 * `$`, `*`, `~` are ordinary characters (nothing is run through a shell).
 */
export function splitCommand(text: string): Parsed<string[]> {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) return bad('has an unterminated single quote');
      word += text.slice(i + 1, close);
      inWord = true;
      i = close;
    } else if (c === '"') {
      inWord = true;
      let closed = false;
      for (i++; i < text.length; i++) {
        const d = text[i]!;
        if (d === '"') {
          closed = true;
          break;
        }
        if (d === '\\' && i + 1 < text.length && '\\"$`\n'.includes(text[i + 1]!)) {
          i++;
          if (text[i] !== '\n') word += text[i];
        } else {
          word += d;
        }
      }
      if (!closed) return bad('has an unterminated double quote');
    } else if (c === '\\') {
      if (i + 1 >= text.length) return bad('ends with a backslash');
      i++;
      if (text[i] !== '\n') {
        word += text[i];
        inWord = true;
      }
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words.length > 0 ? ok(words) : bad('must name a program');
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A host name, an IPv4 address or an IPv6 address (bare or in brackets). */
export function isHost(text: string): boolean {
  if (IPV4.test(text) || HOSTNAME.test(text)) return true;
  const v6 = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (!v6.includes(':') || !/^[0-9A-Fa-f:.]+$/.test(v6)) return false;
  try {
    return new URL(`http://[${v6}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

/** A URL with one of the given schemes (e.g. ['http:', 'https:']) and a host. */
export function parseUrl(text: string, schemes: readonly string[]): Parsed<string> {
  const reason = `must be a ${schemes.map((s) => `${s}//`).join(' or ')} URL with a host`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad(reason);
  }
  if (!schemes.includes(url.protocol) || url.hostname === '' || /\s/.test(text)) return bad(reason);
  return ok(text);
}

/** An http or https URL with a host (a facilitator's, a hook's, a page's, a mint's). */
export function parseHttpUrl(text: string): Parsed<string> {
  return parseUrl(text, ['http:', 'https:']);
}

export function isAbsolutePath(text: string): boolean {
  return text.startsWith('/') && !text.includes('\0');
}

export function isEvmAddress(text: string): boolean {
  return /^0x[0-9a-fA-F]{40}$/.test(text);
}

/**
 * Network device names separated by spaces (`main.shape_device`: a hotspot on a guest bridge and a second SSID's
 * interface), each a Linux interface name; empty: none. Duplicates are taken once.
 */
export function parseDeviceNames(text: string): Parsed<string[]> {
  const names = text.trim() === '' ? [] : text.trim().split(/\s+/);
  if (!names.every((n) => /^[A-Za-z0-9._@-]{1,15}$/.test(n))) {
    return {
      ok: false,
      reason:
        'must be network device names (each 1 to 15 characters from A-Z a-z 0-9 . _ @ -, separated by spaces), or ' +
        "empty for the portal's",
    };
  }
  return { ok: true, value: [...new Set(names)] };
}
