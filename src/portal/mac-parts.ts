/**
 * A MAC as two integers (16 + 32 bits), the form the usage worker's scanner produces without allocating a string and
 * the shared counter table stores. Lowercase colon form is what both portals print and what sessions key on.
 */

export function macToParts(mac: string): [hi: number, lo: number] | undefined {
  if (mac.length !== 17) return undefined;
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 6; i++) {
    const h = hexValue(mac.charCodeAt(i * 3));
    const l = hexValue(mac.charCodeAt(i * 3 + 1));
    if (h < 0 || l < 0 || (i < 5 && mac.charCodeAt(i * 3 + 2) !== 0x3a)) return undefined;
    const byte = h * 16 + l;
    if (i < 2) hi = hi * 256 + byte;
    else lo = lo * 256 + byte;
  }
  return [hi, lo];
}

/** The character codes of the hex digits, lowercase. */
const DIGITS = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/**
 * The colon form, made as one flat string from its 17 character codes: toString(16), padStart and six slices made
 * eight strings on the way, ~6 times the CPU (a million MACs each way, node 20), and the usage worker and the meter
 * make one per client each tick.
 */
export function macFromParts(hi: number, lo: number): string {
  const a = (hi >>> 8) & 255;
  const b = hi & 255;
  const c = lo >>> 24;
  const d = (lo >>> 16) & 255;
  const e = (lo >>> 8) & 255;
  const f = lo & 255;
  return String.fromCharCode(
    DIGITS[a >> 4]!,
    DIGITS[a & 15]!,
    0x3a,
    DIGITS[b >> 4]!,
    DIGITS[b & 15]!,
    0x3a,
    DIGITS[c >> 4]!,
    DIGITS[c & 15]!,
    0x3a,
    DIGITS[d >> 4]!,
    DIGITS[d & 15]!,
    0x3a,
    DIGITS[e >> 4]!,
    DIGITS[e & 15]!,
    0x3a,
    DIGITS[f >> 4]!,
    DIGITS[f & 15]!,
  );
}

/** The value of one hex digit's character code, -1 if it is none. */
export function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
