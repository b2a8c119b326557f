/**
 * The escrow subsystem's side of the daemon, around the x402-session payment method it owns: credit gating (past
 * escrow.credit_steps beyond the latest receipt a session's gate is held closed; a receipt that covers the usage
 * releases it at once), the receipts and escrow view the API shows, and closing each escrow session when its sluice
 * session ends. The gate does the holding; this decides when, and tells (events) so the API and upstreams can say so.
 */
import { toSluiceError } from '../../errors.ts';
import type { EscrowConfig } from '../../config/index.ts';
import type { EscrowClose, EscrowLedger } from '../../escrow/index.ts';
import { loadEvm } from '../../x402/index.ts';
import type { Log } from '../../log.ts';
import { systemClock, type Clock, type Timers } from '../../time.ts';
import {
  Emitter,
  isLive,
  type Session,
  type SessionControlPort,
  type SessionEventsView,
  type SessionPurchasePort,
  type SessionReadView,
} from '../../sessions/index.ts';
import { afterEndOnFlash, type EndRecordsTap } from '../../sessions/index.ts';
import { METHOD_NAME } from './terms.ts';
import { X402SessionMethod } from './x402-session.ts';

/** The figures of a hold or a release (ubus event fields: decimal strings). */
export interface CreditFigures {
  session: string;
  mac: string;
  escrow_session: string;
  metered_steps: string;
  receipt_units: string;
}

/** An escrow session closed on chain: the sluice session it paid for (if still known) and the amounts. */
export interface EscrowSessionClosed {
  session: Session | null;
  mac: string;
  /** As ubus `session` shows it, with `close`. */
  escrow: NonNullable<ReturnType<X402SessionMethod['escrowView']>>;
  /** The close's figures as upstream reports carry them (units 0 and transaction null when the ledger has none). */
  figures: { sessionId: string; units: string; transaction: string | null; sellerAmount: string; buyerRefund: string };
}

export type EscrowCreditEvents = {
  'awaiting-receipt': [figures: CreditFigures];
  receipt: [figures: CreditFigures];
  'escrow-closed': [closed: EscrowSessionClosed];
};

/** The gate's side of a hold: true when it changed something (a second hold or release is not told again). */
export interface HoldingGate {
  hold(mac: string): Promise<boolean>;
  release(mac: string): Promise<boolean>;
}

export interface EscrowCreditOptions {
  config: EscrowConfig;
  ledger: EscrowLedger;
  /** Read and followed for credit gating; the x402-session method grants through it. */
  sessions: SessionReadView & SessionEventsView & SessionControlPort & SessionPurchasePort;
  gate: HoldingGate;
  /** When a session's end record is durable (EndRecordsTap): an escrow session is closed only for an end on flash. */
  endsWritten: Pick<EndRecordsTap, 'onEndsWritten'>;
  /** The step size of a plan as configured now (escrow.credit_steps counts steps). */
  stepSizeOf: (plan: string | null) => bigint | undefined;
  log: Log;
  clock?: Clock;
  /** The escrow method's close timer (X402SessionOptions.timers). */
  timers?: Timers;
}

/** The answer of a check with nothing to do: one settled promise, not one per call. */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * The daemon's way to build it: viem first (x402/evm-loader.ts), for the terms nonce, session ids and receipts hashed
 * synchronously; loaded when the method is on, not with every daemon.
 */
export async function openEscrowCredit(options: EscrowCreditOptions): Promise<EscrowCredit> {
  await loadEvm();
  return new EscrowCredit(options);
}

/** The escrow session id a session was last paid through (x402-session), if any. */
export function escrowRefOf(s: Session): string | undefined {
  return s.payments.filter((p) => p.method === METHOD_NAME).at(-1)?.reference;
}

export class EscrowCredit {
  /** The payment method (the merchant sells through it). */
  readonly method: X402SessionMethod;
  private readonly events: Emitter<EscrowCreditEvents>;
  private readonly clock: Clock;
  /** Sessions whose gate this credit holds (their usage checkpointed once, before the hold). */
  private readonly holding = new Set<string>();

  constructor(private readonly options: EscrowCreditOptions) {
    this.clock = options.clock ?? systemClock;
    const { sessions, log } = options;
    this.events = new Emitter<EscrowCreditEvents>((err, event) =>
      log.warn('escrow listener failed', { event: String(event), reason: toSluiceError(err).message }),
    );
    this.method = new X402SessionMethod(options.config, {
      ledger: options.ledger,
      log,
      sessions,
      onClosed: (escrowId, close) => this.closed(escrowId, close),
      clock: this.clock,
      ...(options.timers && { timers: options.timers }),
    });
    // The close follows the end record on flash, not the `ended` event: closed for an end the journal then lost (a
    // kill -9 before its fsync), the escrow would be settled while the session came back ACTIVE and ran unpaid.
    afterEndOnFlash(
      sessions,
      options.endsWritten,
      (s) => {
        const refs = s.payments.filter((p) => p.method === METHOD_NAME).map((p) => p.reference);
        return refs.length > 0 ? { refs, at: s.endedAt ?? this.clock.now() } : undefined;
      },
      (end) => {
        for (const ref of end.refs)
          void this.method.sessionEnded(ref, end.at).catch((err: unknown) =>
            log.warn('escrow close not scheduled; the next start closes it', {
              session: ref,
              reason: toSluiceError(err).message,
            }),
          );
      },
    );
    // No write when a purchase is granted: the pending mark written before /session/create is the
    // purchase's one durable write. A mark a session holds is harmless: the resolver skips a reference a session holds
    // (and a late grant of it is refused as applied), the session's end clears it with the endedAt write the close
    // needs anyway, and the start's reconcile clears it for a live holder (docs/escrow.md).
  }

  on<K extends keyof EscrowCreditEvents>(event: K, listener: (...args: EscrowCreditEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /**
   * At start, after the sessions' recovery: every escrow session the ledger holds open, against the journal. Ended
   * there (before the crash, or while down) → closed; live → kept; held by no session → closed and refunded, unless
   * its purchase is still pending (the resolver grants it or drops it). X402SessionMethod.reconcile has the rule.
   */
  async reconcile(): Promise<void> {
    const holders = new Map<string, Session>();
    // Oldest first: the latest session holding a reference wins (a reference is held by one session anyway).
    for (const s of this.options.sessions.list({})) {
      for (const p of s.payments) if (p.method === METHOD_NAME) holders.set(p.reference.toLowerCase(), s);
    }
    await this.method.reconcile((ref) => {
      const s = holders.get(ref.toLowerCase());
      return s && { live: isLive(s), endedAt: s.endedAt };
    });
  }

  /**
   * Every active session's hold, evaluated anew: at start (holds are not stored: they follow from the ledger's latest
   * receipt and the journal's usage, checkpointed at every hold) and after a reload (escrow.credit_steps or a plan's
   * step size may have changed).
   */
  async recheckAll(): Promise<void> {
    for (const s of this.options.sessions.list({ state: 'ACTIVE' })) await this.check(s.id);
  }

  /** Credit gating for one session (every billed session, every tick). */
  check(sessionId: string): Promise<void> {
    // The sessions it is not about (no escrow payment, nothing to hold or release) return here without a promise of
    // their own: this runs for every billed session on every tick.
    const s = this.options.sessions.get(sessionId);
    if (!s || !isLive(s)) {
      this.holding.delete(sessionId);
      return SETTLED;
    }
    const ref = escrowRefOf(s);
    const stepSize = this.options.stepSizeOf(s.plan);
    if (ref === undefined || stepSize === undefined) return SETTLED;
    const credit = this.method.creditOf(ref, BigInt(s.used), stepSize);
    if (!credit) return SETTLED;
    return this.apply(s, ref, credit);
  }

  /** Forgets that this session's credit held its gate (true: the release goes on to the gate either way). */
  private released(sessionId: string): true {
    this.holding.delete(sessionId);
    return true;
  }

  private async apply(
    s: Session,
    ref: string,
    credit: NonNullable<ReturnType<X402SessionMethod['creditOf']>>,
  ): Promise<void> {
    const figures: CreditFigures = {
      session: s.id,
      mac: s.mac,
      escrow_session: ref,
      metered_steps: credit.metered.toString(),
      receipt_units: credit.receipted.toString(),
    };
    if (credit.state === 'awaiting-receipt') {
      // The hold is not stored, it is re-evaluated at start from the usage on flash: that usage is written before the
      // gate closes (one checkpoint per hold), or a kill -9 right after the hold would re-open the gate at start.
      if (!this.holding.has(s.id)) await this.options.sessions.checkpoint().catch(() => undefined);
      this.holding.add(s.id);
      if (await this.options.gate.hold(s.mac)) {
        this.options.log.info('escrow credit exhausted: gate held until a receipt', { ...figures });
        this.events.emit('awaiting-receipt', figures);
      }
    } else if (credit.state === 'open' && this.released(s.id) && (await this.options.gate.release(s.mac))) {
      this.options.log.info('escrow receipt: gate re-opened', { ...figures });
      this.events.emit('receipt', figures);
    }
  }

  /** A buyer-signed usage receipt (ubus `receipt`): kept when higher than the session's last; may release a hold. */
  async receipt(
    args: Record<string, unknown>,
  ): Promise<{ sessionId: string; cumulativeUnits: bigint; advanced: boolean }> {
    const { sessions } = this.options;
    const live = (mac: string): Session | undefined => sessions.list({ mac }).find(isLive);
    const r = await this.method.receipt(args, (mac) => {
      const s = live(mac);
      return s && escrowRefOf(s);
    });
    const session = sessions.list({}).find((s) => isLive(s) && s.payments.some((p) => p.reference === r.sessionId));
    if (session) await this.check(session.id);
    return r;
  }

  /** The escrow side of a session paid with x402-session (ubus `session`); null otherwise. */
  escrowOf(s: Session): ReturnType<X402SessionMethod['escrowView']> {
    const ref = escrowRefOf(s);
    if (ref === undefined) return null;
    const stepSize = this.options.stepSizeOf(s.plan);
    return this.method.escrowView(
      ref,
      isLive(s) && stepSize !== undefined ? { used: BigInt(s.used), stepSize } : undefined,
    );
  }

  /** The escrow session behind a sluice session was closed on chain: told with the amounts. */
  private closed(escrowId: string, close: EscrowClose): void {
    const s = this.options.sessions
      .list({})
      .find((x) => x.payments.some((p) => p.method === METHOD_NAME && p.reference === escrowId));
    const escrow = this.method.escrowView(escrowId);
    const mac = s?.mac ?? this.method.macOf(escrowId);
    if (!escrow || mac === undefined) return;
    this.events.emit('escrow-closed', {
      session: s ?? null,
      mac,
      escrow,
      figures: {
        sessionId: escrowId,
        units: close.units ?? '0',
        transaction: close.transaction || null,
        sellerAmount: close.sellerAmount,
        buyerRefund: close.buyerRefund,
      },
    });
  }

  reconfigure(config: EscrowConfig): void {
    this.method.reconfigure(config);
  }

  /** Closes left by a restart or an outage: once the upstream sinks run, so their escrow-closed messages are queued. */
  start(): void {
    this.method.start();
  }

  stop(): void {
    this.method.stop();
  }
}
