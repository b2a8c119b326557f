/**
 * A voucher's speed tier from its Access-Accept: WISPr-Bandwidth-Max-Down/-Up (bits per second, as CoovaChilli reads
 * them) and Mikrotik-Rate-Limit ("rx[/tx] [burst…]" from the router's side: rx is what it receives, the client's
 * upload; tx the client's download; units k/M/G as MikroTik writes them, e.g. "2M/8M"). Both given: the smaller per
 * direction (like the byte limits). A value sluice cannot use (0, out of range, unreadable text) is left out with a
 * problem the caller logs: a voucher is never refused, nor the daemon upset, for its rate.
 */
import { MAX_RATE_BPS, MIN_RATE_BPS, parseRate, type ClientRates } from '../../portal/index.ts';
import type { AttributeReader } from '../../radius/index.ts';

export interface VoucherRates {
  /** null: the Accept set no usable rate. */
  rates: ClientRates | null;
  /** What was ignored, and why (for the log). */
  problems: string[];
}

/** Pure: "rx/tx …" → the client's upload and download (null where absent or unreadable). */
export function parseMikrotikRateLimit(text: string, problems: string[] = []): ClientRates {
  const first = text.trim().split(/\s+/)[0] ?? '';
  const [rx = '', tx = '', ...rest] = first.split('/');
  const one = (part: string, what: string): number | null => {
    if (part === '' || part === '0') return null; // MikroTik: 0 is "no limit"
    const p = parseRate(part);
    if (p.ok) return p.bps;
    problems.push(`Mikrotik-Rate-Limit ${what} "${part.slice(0, 32)}" ignored: ${p.reason}`);
    return null;
  };
  if (rest.length > 0 || first === '') {
    problems.push(`Mikrotik-Rate-Limit "${text.slice(0, 64)}" ignored: not rx[/tx]`);
    return { upBps: null, downBps: null };
  }
  return { upBps: one(rx, 'rx (upload)'), downBps: one(tx, 'tx (download)') };
}

const smaller = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.min(a, b));

/** Pure: the Accept's rate attributes → the rates; never throws. */
export function ratesFromAccept(reply: AttributeReader): VoucherRates {
  const problems: string[] = [];
  const wispr = (name: 'WISPr-Bandwidth-Max-Down' | 'WISPr-Bandwidth-Max-Up'): number | null => {
    let v: number | undefined;
    try { v = reply.integer(name); } catch (err) {
      problems.push(`${name} ignored: ${(err as Error).message}`);
      return null;
    }
    if (v === undefined) return null;
    if (v < MIN_RATE_BPS || v > MAX_RATE_BPS) {
      problems.push(`${name} ${v} ignored: must be ${MIN_RATE_BPS} to ${MAX_RATE_BPS} bits per second`);
      return null;
    }
    return v;
  };
  const down = wispr('WISPr-Bandwidth-Max-Down');
  const up = wispr('WISPr-Bandwidth-Max-Up');
  let mikrotik: ClientRates = { downBps: null, upBps: null };
  let text: string | undefined;
  try { text = reply.string('Mikrotik-Rate-Limit'); } catch (err) { problems.push(`Mikrotik-Rate-Limit ignored: ${(err as Error).message}`); }
  if (text !== undefined) mikrotik = parseMikrotikRateLimit(text, problems);
  const rates = { downBps: smaller(down, mikrotik.downBps), upBps: smaller(up, mikrotik.upBps) };
  return { rates: rates.downBps === null && rates.upBps === null ? null : rates, problems };
}
