/**
 * The mint's HTTP API as the `cashu` method speaks it (NUT-01 keys, NUT-02 keysets, NUT-03 swap, NUT-07 checkstate,
 * NUT-09 restore), every exchange bounded in time and size (src/http-client.ts) and ended at stop. Each call says
 * what the mint did as far as the router can know:
 *   - `ok`: the answer;
 *   - `refused`: the mint answered a NUT-00 error ({detail, code}) or a 429: nothing was applied;
 *   - `unsent`: the connection was refused (the mint never saw the request): nothing was applied;
 *   - `unknown`: a timeout, a dropped connection, a 5xx: the request may have been applied (a swap's intent stays).
 * The answers' shapes are checked here; nothing the mint sends is trusted beyond them.
 */
import { boundedFetch } from '../http-client.ts';
import type { KeysetEntry, StoredProof, SwapOutput } from './token.ts';

export type MintAnswer<T> =
  | { kind: 'ok'; value: T }
  | { kind: 'refused'; code: number; detail: string; status: number }
  | { kind: 'unsent' | 'unknown'; message: string };

export interface BlindSignature {
  amount: number;
  id: string;
  C_: string;
}

export type ProofStateName = 'UNSPENT' | 'SPENT' | 'PENDING';

/** A mint's answers are small: keysets and keys a few KiB, a swap's signatures under 64 outputs. */
const MAX_ANSWER_BYTES = 256 * 1024;

export interface MintClientOptions {
  /** Per exchange, for reads (keysets, keys, checkstate, restore). */
  timeoutMs: number;
  /** A swap's own deadline: longer than the purchase waits (it goes on in the background, ERR_CASHU_PENDING). */
  swapTimeoutMs: number;
  signal: AbortSignal;
}

const isHex = (v: unknown, len?: number): v is string =>
  typeof v === 'string' && /^[0-9a-fA-F]+$/.test(v) && (len === undefined || v.length === len);
const isPoint = (v: unknown): v is string => typeof v === 'string' && /^0[23][0-9a-fA-F]{64}$/.test(v);

export class MintClient {
  constructor(
    readonly url: string,
    private readonly options: MintClientOptions,
  ) {}

  protected async exchange<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    timeoutMs: number,
    read: (json: unknown) => T | null,
  ): Promise<MintAnswer<T>> {
    const answer = await boundedFetch(`${this.url}${path}`, {
      method,
      timeoutMs,
      maxBytes: MAX_ANSWER_BYTES,
      signal: this.options.signal,
      ...(body !== undefined && { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    if (answer.kind === 'none')
      return { kind: answer.why === 'unsent' ? 'unsent' : 'unknown', message: answer.message };
    if (answer.kind === 'cut') return { kind: 'unknown', message: answer.message };
    let json: unknown;
    try {
      json = JSON.parse(answer.body.toString('utf8'));
    } catch {
      json = undefined;
    }
    if (answer.status === 429) return { kind: 'refused', code: 429, detail: 'rate limited', status: 429 };
    if (answer.status >= 400 && answer.status < 500 && json !== null && typeof json === 'object') {
      const { code, detail } = json as { code?: unknown; detail?: unknown };
      return {
        kind: 'refused',
        code: typeof code === 'number' ? code : 0,
        detail: typeof detail === 'string' ? detail.slice(0, 200) : 'refused',
        status: answer.status,
      };
    }
    if (answer.status !== 200) return { kind: 'unknown', message: `HTTP ${answer.status}` };
    const value = read(json);
    return value === null
      ? { kind: 'unknown', message: `the mint's answer to ${path} is not what NUT-00 says` }
      : { kind: 'ok', value };
  }

  keysets(): Promise<MintAnswer<KeysetEntry[]>> {
    return this.exchange('GET', '/v1/keysets', undefined, this.options.timeoutMs, (json) => {
      const list = (json as { keysets?: unknown })?.keysets;
      if (!Array.isArray(list)) return null;
      const out: KeysetEntry[] = [];
      for (const k of list as Array<Record<string, unknown>>) {
        if (!isHex(k.id) || typeof k.unit !== 'string' || typeof k.active !== 'boolean') continue;
        const fee =
          typeof k.input_fee_ppk === 'number' && Number.isSafeInteger(k.input_fee_ppk) && k.input_fee_ppk >= 0
            ? k.input_fee_ppk
            : 0;
        out.push({ id: k.id, unit: k.unit, active: k.active, inputFeePpk: fee });
      }
      return out;
    });
  }

  /** NUT-01: one keyset's public keys, amount → compressed point. */
  keys(id: string): Promise<MintAnswer<Record<string, string>>> {
    return this.exchange('GET', `/v1/keys/${encodeURIComponent(id)}`, undefined, this.options.timeoutMs, (json) => {
      const keysets = (json as { keysets?: unknown })?.keysets;
      if (!Array.isArray(keysets)) return null;
      const ks = (keysets as Array<{ id?: unknown; keys?: unknown }>).find((k) => k.id === id);
      if (!ks || typeof ks.keys !== 'object' || ks.keys === null) return null;
      const keys: Record<string, string> = {};
      for (const [amount, key] of Object.entries(ks.keys as Record<string, unknown>)) {
        if (/^\d{1,16}$/.test(amount) && isPoint(key)) keys[amount] = key;
      }
      return keys;
    });
  }

  /** NUT-03. The same body sent again is a NUT-19 replay (a mint caching /v1/swap answers it again). */
  swap(inputs: readonly StoredProof[], outputs: readonly SwapOutput[]): Promise<MintAnswer<BlindSignature[]>> {
    const body = {
      inputs: inputs.map(({ id, amount, secret, C }) => ({ id, amount, secret, C })),
      outputs: outputs.map(({ id, amount, B_ }) => ({ id, amount, B_ })),
    };
    return this.exchange('POST', '/v1/swap', body, this.options.swapTimeoutMs, (json) =>
      signaturesOf((json as { signatures?: unknown })?.signatures, outputs.length),
    );
  }

  /** NUT-07: Y → state. */
  checkstate(ys: readonly string[]): Promise<MintAnswer<Map<string, ProofStateName>>> {
    return this.exchange('POST', '/v1/checkstate', { Ys: ys }, this.options.timeoutMs, (json) => {
      const states = (json as { states?: unknown })?.states;
      if (!Array.isArray(states)) return null;
      const out = new Map<string, ProofStateName>();
      for (const s of states as Array<{ Y?: unknown; state?: unknown }>) {
        if (typeof s.Y === 'string' && (s.state === 'UNSPENT' || s.state === 'SPENT' || s.state === 'PENDING'))
          out.set(s.Y.toLowerCase(), s.state);
      }
      return ys.every((y) => out.has(y.toLowerCase())) ? out : null;
    });
  }

  /** NUT-09: the signatures the mint issued on these outputs, by B_ (an output it never signed is left out). */
  restore(outputs: readonly SwapOutput[]): Promise<MintAnswer<Map<string, BlindSignature>>> {
    const body = { outputs: outputs.map(({ id, amount, B_ }) => ({ id, amount, B_ })) };
    return this.exchange('POST', '/v1/restore', body, this.options.timeoutMs, (json) => {
      const j = json as { outputs?: unknown; signatures?: unknown; promises?: unknown };
      const outs = j?.outputs;
      const sigs = j?.signatures ?? j?.promises;
      if (!Array.isArray(outs) || !Array.isArray(sigs) || outs.length !== sigs.length) return null;
      const parsed = signaturesOf(sigs, sigs.length);
      if (!parsed) return null;
      const out = new Map<string, BlindSignature>();
      (outs as Array<{ B_?: unknown }>).forEach((o, i) => {
        if (typeof o.B_ === 'string') out.set(o.B_.toLowerCase(), parsed[i]!);
      });
      return out;
    });
  }
}

function signaturesOf(list: unknown, count: number): BlindSignature[] | null {
  if (!Array.isArray(list) || list.length !== count) return null;
  const out: BlindSignature[] = [];
  for (const s of list as Array<Record<string, unknown>>) {
    const amount =
      typeof s.amount === 'number'
        ? s.amount
        : typeof s.amount === 'string' && /^\d{1,16}$/.test(s.amount)
          ? Number(s.amount)
          : NaN;
    if (!Number.isSafeInteger(amount) || typeof s.id !== 'string' || !isPoint(s.C_)) return null;
    out.push({ amount, id: s.id, C_: s.C_ });
  }
  return out;
}
