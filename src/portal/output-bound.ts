/**
 * How much output a portal snapshot may have, from the client count it declares in its first line.
 * Both portals open `json` with the count: openNDS `{"client_list_length":"N",`, nodogsplash `{"client_length": N,`.
 * A snapshot is refused as soon as it runs past what N clients can need (or has no count at its start), so a wrapper
 * that floods or a portal gone wrong costs a few KiB of reading, not hundreds of MB of RAM; `cap`
 * (`main.portal_output_max`) bounds even an honest but absurd count.
 */
import { FLAVOURS, FORMATS } from './formats.ts';

/** Room per declared client: openNDS's entries are ~0.9 KiB (nodogsplash's less); its `custom` string can add some. */
export const PER_CLIENT_MAX_BYTES = 8 * 1024;
/** The envelope around the entries, and slack for a client that arrived while the portal printed. */
export const ENVELOPE_BYTES = 64 * 1024;
/** The count must show within this many bytes from the start. */
export const HEADER_WINDOW_BYTES = 4096;
export const DEFAULT_OUTPUT_CAP = 32 * 1024 * 1024;

const COUNT_KEYS = FLAVOURS.map((flavour) => FORMATS[flavour].countKey).join('|');
const COUNT = new RegExp(`^\\s*\\{\\s*"(${COUNT_KEYS})"\\s*:\\s*"?(\\d{1,9})"?\\s*,`);

export type DeclaredCount = { kind: 'count'; clients: number } | { kind: 'pending' } | { kind: 'missing' };

/** The client count declared at the start of `head` (the output's first bytes so far). */
export function declaredClientCount(head: Uint8Array): DeclaredCount {
  const text = Buffer.from(head.buffer, head.byteOffset, Math.min(head.length, HEADER_WINDOW_BYTES)).toString('latin1');
  const m = COUNT.exec(text);
  if (m) return { kind: 'count', clients: Number(m[2]) };
  return head.length < HEADER_WINDOW_BYTES && !text.includes(',') ? { kind: 'pending' } : { kind: 'missing' };
}

/** Bytes a snapshot declaring `clients` may have, at most `cap`. */
export function outputBound(clients: number, cap: number): number {
  return Math.min(cap, ENVELOPE_BYTES + clients * PER_CLIENT_MAX_BYTES);
}

/**
 * Follows one output as it arrives: `check(size, head)` after each chunk answers undefined while the output is within
 * its bound, else why it is refused.
 */
export class OutputGuard {
  private limit: number;
  private counted = false;
  constructor(private readonly cap: number) {
    this.limit = cap;
  }
  check(size: number, head: () => Uint8Array): string | undefined {
    if (!this.counted) {
      const declared = declaredClientCount(head());
      if (declared.kind === 'count') {
        this.counted = true;
        this.limit = outputBound(declared.clients, this.cap);
      } else if (declared.kind === 'missing') {
        return 'output does not start with a client count (client_list_length / client_length): not a client list';
      }
    }
    if (size > this.limit) {
      return this.counted && this.limit < this.cap
        ? `output over ${this.limit} bytes, more than its declared clients can need`
        : `output over ${this.cap} bytes (main.portal_output_max)`;
    }
    return undefined;
  }
}
