/**
 * Keeps the portal's gates in step with the sessions: open for every live session, closed for everything else.
 * The valve does the ndsctl work; this decides when. Failures never lose a paid session: a gate that cannot be opened
 * now (the portal has not seen the MAC, or is down) is `pending` and opens when the meter sees the client again; a
 * gate that cannot be closed now is retried on every tick until it is.
 */
import { toSluiceError } from '../errors.ts';
import { isLive, type Session, type SessionManager } from '../sessions/index.ts';
import { GATE_OPEN_STATES, type PortalSnapshot, type Valve } from '../valve/index.ts';
import type { Logger } from '../log.ts';
import type { GateState } from '../api/index.ts';
import { safetyNetFor } from './safety-net.ts';

export type GateValve = Pick<Valve, 'open' | 'close' | 'snapshot'>;

export interface GatekeeperOptions {
  valve: GateValve;
  sessions: Pick<SessionManager, 'byMac' | 'list' | 'end'>;
  log: Logger;
  now?: () => number;
  /** A paying client that is present but whose gate keeps failing to open ends as `portal-lost` after this. */
  portalLostGraceMs?: number;
}

export interface ReconcileReport {
  deauthed: string[];
  reopened: string[];
  pending: string[];
  alreadyOpen: number;
}

const AUTHED_STATES: ReadonlySet<string> = new Set(GATE_OPEN_STATES);

export class Gatekeeper {
  private readonly now: () => number;
  private readonly gates = new Map<string, 'open' | 'pending'>();
  /** MACs whose deauth failed: retried on every tick. */
  private readonly toClose = new Set<string>();
  /** First failed re-open of a present paying client in the current streak. */
  private readonly failingSince = new Map<string, number>();
  private readonly counters = { opened: 0, closed: 0, openFailures: 0, closeFailures: 0, reopened: 0, portalLost: 0 };

  constructor(private readonly options: GatekeeperOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Opens the gate of a session that just started (not for top-ups: the gate is already open or pending). */
  async open(session: Session): Promise<GateState> {
    if (!isLive(session)) return 'pending';
    this.toClose.delete(session.mac);
    try {
      const result = await this.options.valve.open(session.mac, safetyNetFor(session, this.now()));
      // The session may have ended while ndsctl ran (a terminate racing the purchase): do not leave the gate open.
      if (!this.isStillLive(session)) {
        await this.close(session.mac);
        return 'pending';
      }
      this.gates.set(session.mac, 'open');
      this.failingSince.delete(session.mac);
      this.counters.opened++;
      this.options.log.info('gate open', { mac: session.mac, session: session.id, result });
      return result;
    } catch (err) {
      const e = toSluiceError(err);
      this.gates.set(session.mac, 'pending');
      this.counters.openFailures++;
      const level = e.code === 'ERR_PORTAL_CLIENT_UNKNOWN' ? 'info' : 'warn';
      this.options.log[level]('gate pending', { mac: session.mac, session: session.id, code: e.code, reason: e.message });
      return 'pending';
    }
  }

  /** Closes the MAC's gate unless another live session needs it. */
  async close(mac: string): Promise<void> {
    const live = this.options.sessions.byMac(mac);
    if (live && isLive(live)) return;
    this.gates.delete(mac);
    this.failingSince.delete(mac);
    try {
      const result = await this.options.valve.close(mac);
      this.toClose.delete(mac);
      this.counters.closed++;
      this.options.log.info('gate closed', { mac, result });
    } catch (err) {
      const e = toSluiceError(err);
      this.toClose.add(mac);
      this.counters.closeFailures++;
      this.options.log.warn('gate close failed, will retry', { mac, code: e.code, reason: e.message });
    }
  }

  gateOf(mac: string): GateState {
    const gate = this.gates.get(mac);
    return gate === 'open' ? 'already-open' : 'pending';
  }

  /**
   * The meter saw a paying client present but unauthenticated (portal restart, the portal's idle timeout, a net that
   * a top-up outgrew): re-open it as a new counter epoch.
   */
  async reopen(mac: string): Promise<void> {
    const session = this.options.sessions.byMac(mac);
    if (!session || !isLive(session)) return;
    const gate = await this.open(session);
    if (gate !== 'pending') {
      this.counters.reopened++;
      return;
    }
    const since = this.failingSince.get(mac) ?? this.now();
    this.failingSince.set(mac, since);
    const grace = this.options.portalLostGraceMs ?? 120_000;
    if (this.now() - since >= grace) {
      this.counters.portalLost++;
      this.failingSince.delete(mac);
      this.options.log.warn('portal lost a paying client', { mac, session: session.id, since });
      await this.options.sessions.end(session.id, 'portal-lost');
    }
  }

  /** Retries failed closes; called after every meter tick. */
  async retryCloses(): Promise<void> {
    for (const mac of [...this.toClose]) await this.close(mac);
  }

  /**
   * On start: authenticated clients without a live session are deauthed (a crash must never leave free access);
   * live sessions whose client is present but not authenticated are re-opened (a new counter epoch); live sessions
   * whose client is absent stay pending.
   */
  async reconcile(snapshot?: PortalSnapshot): Promise<ReconcileReport> {
    const report: ReconcileReport = { deauthed: [], reopened: [], pending: [], alreadyOpen: 0 };
    const snap = snapshot ?? (await this.options.valve.snapshot());
    const present = new Map(snap.clients.map((c) => [c.mac, c]));
    for (const client of snap.clients) {
      // Trusted MACs are the admin's own free list in the portal's config: not sluice's to close.
      if (!AUTHED_STATES.has(client.state) || client.state === 'Trusted') continue;
      const session = this.options.sessions.byMac(client.mac);
      if (session && isLive(session)) continue;
      await this.close(client.mac);
      report.deauthed.push(client.mac);
    }
    for (const session of this.options.sessions.list({ state: 'ACTIVE' })) {
      const client = present.get(session.mac);
      if (client && AUTHED_STATES.has(client.state)) {
        this.gates.set(session.mac, 'open');
        report.alreadyOpen++;
      } else if (client) {
        const gate = await this.open(session);
        (gate === 'pending' ? report.pending : report.reopened).push(session.mac);
      } else {
        this.gates.set(session.mac, 'pending');
        report.pending.push(session.mac);
      }
    }
    return report;
  }

  stats(): Record<string, number> {
    let open = 0;
    let pending = 0;
    for (const g of this.gates.values()) g === 'open' ? open++ : pending++;
    return { open, pending, closing: this.toClose.size, ...this.counters };
  }

  private isStillLive(session: Session): boolean {
    const current = this.options.sessions.byMac(session.mac);
    return current !== null && current.id === session.id && isLive(current);
  }
}
