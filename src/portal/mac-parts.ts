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

export function macFromParts(hi: number, lo: number): string {
  const hex = hi.toString(16).padStart(4, '0') + (lo >>> 0).toString(16).padStart(8, '0');
  return (
    `${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:` +
    `${hex.slice(6, 8)}:${hex.slice(8, 10)}:${hex.slice(10, 12)}`
  );
}

/** The value of one hex digit's character code, -1 if it is none. */
export function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
