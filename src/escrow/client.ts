/**
 * Client of an escrow facilitator's sessions API (the x402r sessions plan's shapes; docs/escrow.md): POST
 * /session/create, /session/consume, /session/close, GET /session/:network/:id, GET /sessions/stats.
 *
 * Answers are one of: done (with the facilitator's figures), refused (a definite "no" in either error dialect, kept
 * as an opaque reason), or unknown (no answer, 5xx, garbage: the transaction may or may not have happened). consume and
 * close are safe to retry (receipts are cumulative; a closed session stays closed), so they retry `retries` times on
 * unknown; create is not retried here: its id is known beforehand, so the caller asks `get` instead.
 */
import { Backoff, retrying } from '../backoff.ts';
import { jsonClient, refusalOf } from '../x402/index.ts';

export interface EscrowClientOptions {
  url: string;
  timeoutMs: number;
  /** Extra attempts for consume/close/get/stats on an unknown outcome. Default 2. */
  retries?: number;
  /** The pause before the first extra attempt; it doubles for each next one. Default 500. */
  retryDelayMs?: number;
  /** Ends the exchanges in flight, and any further attempt, at once (the method stopping). */
  signal?: AbortSignal;
}

export type Outcome<T> =
  | { status: 'done'; value: T }
  | { status: 'refused'; reason: string; message: string; httpStatus: number }
  /** `unsent`: the request never reached the facilitator (connection refused, no such host): nothing happened. */
  | { status: 'unknown'; message: string; unsent?: true };

export interface CreateRequest {
  x402Version: 2;
  paymentPayload: Record<string, unknown>;
  paymentRequirements: { asset: string; amount: string; network: string };
}
export interface CreateResult {
  sessionId: string;
  transaction: string | null;
}
export interface ConsumeResult {
  transaction: string | null;
  totalConsumed: string | null;
  remaining: string | null;
}
export interface CloseResult {
  transaction: string;
  sellerAmount: string;
  buyerRefund: string;
}
export interface EscrowSessionView {
  sessionId: string;
  buyer: string;
  seller: string;
  totalDeposit: string;
  consumedAmount: string;
  remainingAmount: string;
  unitsUsed: string;
  remainingUnits: string;
  expiresAt: string;
  status: string;
}
export interface EscrowStats {
  total: number;
  active: number;
  completed: number;
  expired: number;
}

const text = (v: unknown): string | null =>
  typeof v === 'string' && v !== ''
    ? v.slice(0, 200)
    : typeof v === 'number' || typeof v === 'bigint'
      ? String(v)
      : null;

export class EscrowFacilitatorClient {
  private readonly call: ReturnType<typeof jsonClient>;

  constructor(private readonly options: EscrowClientOptions) {
    this.call = jsonClient(options);
  }

  /**
   * One request → outcome; `ok` turns a success body into the value (null: a success missing its figures = unknown).
   */
  private async once<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    ok: (b: Record<string, unknown>) => T | null,
  ): Promise<Outcome<T>> {
    const a = await this.call(method, path, body);
    if (a.kind === 'none') return { status: 'unknown', message: a.message, ...(a.unsent && { unsent: true as const }) };
    if (a.status >= 500)
      return { status: 'unknown', message: `HTTP ${a.status}: ${refusalOf(a.body, a.status).message}` };
    const success = a.body.success;
    if (a.status === 200 && success !== false) {
      const value = ok(a.body);
      return value === null
        ? { status: 'unknown', message: 'success answer without its figures' }
        : { status: 'done', value };
    }
    return { status: 'refused', httpStatus: a.status, ...refusalOf(a.body, a.status) };
  }

  private retried<T>(attempt: () => Promise<Outcome<T>>): Promise<Outcome<T>> {
    return retrying(attempt, {
      retries: this.options.retries ?? 2,
      // Stopped: no pause, no new attempt (an unknown outcome is what the next start asks about).
      again: (outcome) => outcome.status === 'unknown' && this.options.signal?.aborted !== true,
      backoff: new Backoff({ minMs: this.options.retryDelayMs ?? 500, maxMs: Infinity }),
    });
  }

  create(req: CreateRequest): Promise<Outcome<CreateResult>> {
    return this.once('POST', '/session/create', req, (b) => {
      const sessionId = text(b.sessionId);
      return sessionId && b.success === true ? { sessionId, transaction: text(b.transaction) } : null;
    });
  }

  consume(req: {
    sessionId: string;
    units: string;
    nonce: string;
    buyerSignature: string;
    network: string;
  }): Promise<Outcome<ConsumeResult>> {
    return this.retried(() =>
      this.once('POST', '/session/consume', req, (b) =>
        b.success === true
          ? { transaction: text(b.transaction), totalConsumed: text(b.totalConsumed), remaining: text(b.remaining) }
          : null,
      ),
    );
  }

  close(req: {
    sessionId: string;
    network: string;
    units?: string;
    nonce?: string;
    buyerSignature?: string;
  }): Promise<Outcome<CloseResult>> {
    return this.retried(() =>
      this.once('POST', '/session/close', req, (b) => {
        const transaction = text(b.transaction);
        const sellerAmount = text(b.sellerAmount);
        const buyerRefund = text(b.buyerRefund);
        return b.success === true && transaction && sellerAmount !== null && buyerRefund !== null
          ? { transaction, sellerAmount, buyerRefund }
          : null;
      }),
    );
  }

  get(network: string, sessionId: string): Promise<Outcome<EscrowSessionView>> {
    return this.retried(() =>
      this.once('GET', `/session/${encodeURIComponent(network)}/${encodeURIComponent(sessionId)}`, undefined, (b) => {
        const s = b.session;
        if (b.success !== true || typeof s !== 'object' || s === null) return null;
        const r = s as Record<string, unknown>;
        const keys = [
          'sessionId',
          'buyer',
          'seller',
          'totalDeposit',
          'consumedAmount',
          'remainingAmount',
          'unitsUsed',
          'remainingUnits',
          'expiresAt',
          'status',
        ] as const;
        const out: Record<string, string> = {};
        for (const k of keys) {
          const v = text(r[k]);
          if (v === null) return null;
          out[k] = v;
        }
        return out as unknown as EscrowSessionView;
      }),
    );
  }

  stats(): Promise<Outcome<EscrowStats>> {
    return this.retried(() =>
      this.once('GET', '/sessions/stats', undefined, (b) => {
        const n = (k: string) => (typeof b[k] === 'number' && Number.isSafeInteger(b[k]) ? (b[k] as number) : null);
        const [total, active, completed, expired] = [n('total'), n('active'), n('completed'), n('expired')];
        return total === null || active === null || completed === null || expired === null
          ? null
          : { total, active, completed, expired };
      }),
    );
  }
}
