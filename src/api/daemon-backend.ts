import type { ClientRates } from '../portal/index.ts';
/**
 * The daemon's implementation of the API seam: merchant for money, sessions for state, the gate's outcomes for the
 * portal. Order of a purchase (DESIGN "Purchase"): quote → payment → journal (durable) → the gate opens (the gate
 * follows the session's start itself) → the reply, after a bounded wait for that opening; a gate that cannot open now
 * does not undo the purchase (it is `pending`).
 */
import { SluiceError } from '../errors.ts';
import { systemClock, type Clock } from '../time.ts';
import type { Merchant, PurchaseResult } from '../merchant/index.ts';
import {
  type EndCause,
  isLive,
  type Session,
  type SessionControlPort,
  type SessionDevicesPort,
  type SessionReadView,
  type SessionSalesView,
  type SessionState,
} from '../sessions/index.ts';
import type { PricingPlan } from '../config/index.ts';
import type { BlobmsgTable } from '../ubus/index.ts';
import type {
  CallOrigin,
  GateCloseState,
  GateState,
  GrantRequest,
  PurchaseOutcome,
  PurchaseRequest,
  QuoteRecord,
  RatesChanged,
  SluiceBackend,
  SalesSums,
} from './backend.ts';
import type { Gatekeeper } from '../gate/index.ts';
import type { DoorServices, UbusFace } from '../payments/index.ts';
import { toBlobmsgTable } from './plain.ts';
import type { TrialAsk, VenueRoaming } from '../upstream/index.ts';

/** How long a purchase reply waits for the gate before answering `gate: "opening"`. */
export const GATE_REPLY_WAIT_MS = 3000;

/**
 * `outcome`, or `late` once `ms` passed; the timer goes as soon as the outcome comes (a burst of purchases would
 * otherwise leave one armed per purchase for the whole wait).
 */
function within<T, L>(outcome: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<L>((resolve) => {
    timer = setTimeout(resolve, ms, late);
    timer.unref();
  });
  return Promise.race([outcome, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The close of `mac`'s gate after its session ended, as a reply or event field, waiting at most `waitMs` (the close
 * itself goes on). A close kept open by a newer live session of the same MAC counts as closed for the one that ended.
 */
export async function waitForClose(
  gates: Pick<Gatekeeper, 'closed'>,
  mac: string,
  waitMs: number,
): Promise<GateCloseState> {
  const outcome = await within(gates.closed(mac), waitMs, 'closing' as const);
  return outcome === 'kept-open' ? 'closed' : outcome;
}

/**
 * The opening of `session`'s gate begun at its start, as a purchase reply shows it, waiting at most `waitMs`
 * (`opening`: the opening itself goes on).
 */
export function waitForOpen(gates: Pick<Gatekeeper, 'opened'>, session: Session, waitMs: number): Promise<GateState> {
  return within(gates.opened(session), waitMs, 'opening' as const);
}

export interface BackendParts {
  merchant: () => Merchant;
  plans: () => readonly PricingPlan[];
  sessions: SessionReadView & SessionControlPort & SessionDevicesPort & SessionSalesView;
  gates: Pick<Gatekeeper, 'opened' | 'closed' | 'gateOf' | 'ratesApplied'>;
  stats: () => BlobmsgTable;
  reload: () => Promise<BlobmsgTable>;
  clock?: Clock;
  gateReplyWaitMs?: number;
  /** The running payment methods' ubus faces and session fields (payments/plugin-host.ts); absent: none runs. */
  payments?: {
    ubusFaceOf(name: string): UbusFace | null;
    sessionFields(session: Session): Record<string, unknown>;
  };
  /**
   * Told once a rate change went through the change path (journaled, then set in the kernel): the daemon announces it
   * (MQTT, the hook, the ubus event). Not for a change refused before the journal.
   */
  ratesChanged?: (change: RatesChanged) => void;
  /** Roaming within the venue (main.venue), when this router takes part. */
  venue?: VenueRoaming | undefined;
}

export class DaemonBackend implements SluiceBackend {
  constructor(private readonly parts: BackendParts) {}

  get venue(): VenueRoaming | undefined {
    return this.parts.venue;
  }

  now(): number {
    return (this.parts.clock ?? systemClock).now();
  }

  /** What a method's own door sells through and asks (PluginHost.door), with the one MAC resolver every door asks. */
  doorServices(macOf: (ip: string) => Promise<string | null>): DoorServices {
    return {
      now: () => this.now(),
      pricing: () => this.pricing(),
      purchase: (req) => this.purchase(req),
      session: (query) => this.session(query),
      macOf,
    };
  }

  async purchase(req: PurchaseRequest): Promise<PurchaseOutcome> {
    // In a venue, a device whose session is held at another router is not sold a second one (docs/roaming.md).
    await this.parts.venue?.checkSale(req.mac, this.trialAsked(req));
    return this.afterActivation(await this.parts.merchant().purchase(req));
  }

  /** A free trial asked for (method `trial`, a plan with trial_every): the venue has its word on it too. */
  private trialAsked(req: PurchaseRequest): TrialAsk | undefined {
    if (req.payment.method !== 'trial') return undefined;
    const plans = this.pricing();
    const plan = req.plan === undefined ? plans[0] : plans.find((p) => p.id === req.plan);
    if (plan?.trialEvery === undefined) return undefined;
    return { plan: plan.id, everyMs: Number(plan.trialEvery) * 1000 };
  }

  paymentFace(plugin: string): UbusFace | null {
    return this.parts.payments?.ubusFaceOf(plugin) ?? null;
  }

  sessionFields(session: Session): BlobmsgTable {
    return toBlobmsgTable(this.parts.payments?.sessionFields(session) ?? {});
  }

  async grant(req: GrantRequest): Promise<PurchaseOutcome> {
    return this.afterActivation(await this.parts.merchant().grant(req));
  }

  quote(req: { plan?: string; amount?: bigint; steps?: bigint }): QuoteRecord {
    return this.parts.merchant().quote(req.plan ?? null, {
      ...(req.amount !== undefined && { amount: req.amount }),
      ...(req.steps !== undefined && { steps: req.steps }),
    });
  }

  session(query: { mac?: string; id?: string }): Session | undefined {
    if (query.id !== undefined) return this.parts.sessions.get(query.id) ?? undefined;
    if (query.mac === undefined) return undefined;
    const live = this.parts.sessions.byMac(query.mac);
    if (live) return live;
    // No live session: the most recent one the journal still holds, so "why was I cut off" has an answer.
    const past = this.parts.sessions.list({ mac: query.mac });
    return past.sort((a, b) => (b.endedAt ?? b.createdAt) - (a.endedAt ?? a.createdAt))[0];
  }

  sessions(filter: { state?: SessionState; user?: string; mac?: string }): Session[] {
    return this.parts.sessions.list(filter);
  }

  salesBook(): SalesSums {
    return this.parts.sessions.salesBook;
  }

  gateOf(mac: string): 'open' | 'pending' {
    return this.parts.gates.gateOf(mac) === 'already-open' ? 'open' : 'pending';
  }

  /** Ends the session, then answers once its gate is closed (or after the same bounded wait as a purchase). */
  async terminate(mac: string, cause: EndCause): Promise<{ session: Session; gate: GateCloseState }> {
    const live = this.parts.sessions.byMac(mac);
    if (!live || !isLive(live)) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no active session for ${mac}`);
    const session = (await this.parts.sessions.end(live.id, cause)) ?? live;
    return { session, gate: await this.gateClosed(session.mac) };
  }

  /**
   * THE rate-change path (ubus `change` rate_down/rate_up; a RADIUS CoA-Request's rates go the same way): the MAC's
   * live session gets these rates, both directions (null: not limited that way), from now. Journaled first
   * (SessionManager.setRates: on flash before anyone acts, so a restart re-limits its gate with them); then the gate
   * sets them on the session's open gates (a pending gate gets them at its auth). Resolves once the kernel has them,
   * with the session's view (its `rates` the new ones). Then told to `ratesChanged`, with who asked (`by`).
   */
  async changeRates(mac: string, rates: ClientRates, by: CallOrigin = 'ubus'): Promise<Session> {
    const live = this.parts.sessions.byMac(mac);
    if (!live || !isLive(live)) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no live session for ${mac}`);
    const previous = live.rates ? { downBps: live.rates.downBps, upBps: live.rates.upBps } : null;
    const session = await this.parts.sessions.setRates(live.id, rates);
    // In force when this resolves (a CoA-ACK says so): bounded by the auth in flight, if any, and tc/nft's own
    // timeouts.
    await this.parts.gates.ratesApplied(session.id);
    const now = this.parts.sessions.get(session.id) ?? session;
    // After the kernel has them: an announcement read as "in force" is, unless tc/nft refused (the shaper then logs it
    // and turns off; the session's record, which the event carries, holds the new rates either way).
    this.parts.ratesChanged?.({ session: now, previous, by });
    return now;
  }

  async change(query: { mac?: string; id?: string }, limits: { seconds?: bigint; bytes?: bigint }): Promise<Session> {
    const live =
      query.id !== undefined ? this.parts.sessions.get(query.id) : this.parts.sessions.byMac(query.mac ?? '');
    if (!live || !isLive(live) || (query.mac !== undefined && live.mac !== query.mac)) {
      throw new SluiceError('ERR_SESSION_NOT_FOUND', `no live session for ${query.id ?? query.mac}`);
    }
    return this.parts.sessions.setLimits(live.id, limits);
  }

  joinCode(mac: string): { session: Session; code: string | null } {
    const live = this.parts.sessions.byMac(mac);
    if (!live || !isLive(live)) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no live session for ${mac}`);
    return { session: live, code: this.parts.sessions.joinCode(live.id) };
  }

  /** The join is on flash before the gate hears of it; the reply says where the device's gate is now. */
  async joinDevice(code: string, mac: string): Promise<{ session: Session; gate: GateState }> {
    const session = await this.parts.sessions.joinDevice(code, mac);
    return { session, gate: this.parts.gates.gateOf(mac) };
  }

  async removeDevice(mac: string): Promise<{ session: Session; gate: GateCloseState }> {
    const live = this.parts.sessions.byMac(mac);
    if (!live || !isLive(live)) throw new SluiceError('ERR_SESSION_NOT_FOUND', `no live session for ${mac}`);
    const session = await this.parts.sessions.removeDevice(live.id, mac);
    return { session, gate: await this.gateClosed(mac) };
  }

  async move(
    query: { mac?: string; id?: string },
    toMac: string,
  ): Promise<{ session: Session; from: string; gate: GateState }> {
    const live =
      query.id !== undefined ? this.parts.sessions.get(query.id) : this.parts.sessions.byMac(query.mac ?? '');
    if (!live || !isLive(live) || (query.mac !== undefined && live.mac !== query.mac)) {
      throw new SluiceError('ERR_SESSION_NOT_FOUND', `no live session for ${query.id ?? query.mac}`);
    }
    const moved = await this.parts.sessions.move(live.id, toMac);
    const gate = await waitForOpen(this.parts.gates, moved, this.parts.gateReplyWaitMs ?? GATE_REPLY_WAIT_MS);
    const session = this.parts.sessions.get(moved.id) ?? moved;
    return { session, from: live.mac, gate: isLive(session) && session.mac === moved.mac ? gate : 'closed' };
  }

  async logout(user: string): Promise<{ sessions: Session[]; gate: GateCloseState }> {
    const sessions = await this.parts.sessions.endUser(user, 'pc-logout');
    const gates = await Promise.all(sessions.map((s) => this.gateClosed(s.mac)));
    const gate = gates.includes('failed') ? 'failed' : gates.includes('closing') ? 'closing' : 'closed';
    return { sessions, gate };
  }

  /** Waits (bounded) for the close of this MAC's gate, which the gate started when the session ended. */
  gateClosed(mac: string): Promise<GateCloseState> {
    return waitForClose(this.parts.gates, mac, this.parts.gateReplyWaitMs ?? GATE_REPLY_WAIT_MS);
  }

  pricing(): readonly PricingPlan[] {
    return this.parts.plans();
  }

  stats(): BlobmsgTable {
    return this.parts.stats();
  }

  reload(): Promise<BlobmsgTable> {
    return this.parts.reload();
  }

  private async afterActivation(result: PurchaseResult): Promise<PurchaseOutcome> {
    let gate: GateState;
    if (result.toppedUp) gate = this.parts.gates.gateOf(result.session.mac);
    else {
      // ndsctl calls are serialized (~0.1 s each on a router): in a burst the last gate opens long after its purchase
      // is safe on flash. Answer after a bounded wait; the gate keeps opening in order.
      gate = await waitForOpen(this.parts.gates, result.session, this.parts.gateReplyWaitMs ?? GATE_REPLY_WAIT_MS);
    }
    // Re-read: the session may have ended (or been topped up again) while the gate opened.
    const session = this.parts.sessions.get(result.session.id) ?? result.session;
    // An ended session has no gate, whatever the portal's list said a moment ago (its close may still be in flight).
    if (!isLive(session)) gate = 'closed';
    return { session, toppedUp: result.toppedUp, gate, ...(result.quote && { quote: result.quote }) };
  }
}
