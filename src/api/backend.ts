import type { ClientRates } from '../portal/index.ts';
/**
 * What the `sluice` ubus object needs from the rest of the daemon. The daemon implements it by composing the
 * merchant, sessions, gatekeeper and meter; tests implement it directly. Keeping the API on this seam means the wire
 * contract (docs/ubus-api.md) is tested without a portal.
 */
import type { BlobmsgTable } from '../ubus/index.ts';
import type { PricingPlan } from '../config/index.ts';
import type { PurchaseRequest, Quote } from '../merchant/index.ts';
import type { EndCause, Session, SessionState } from '../sessions/index.ts';
import type { GateCloseState, GateState } from '../gate/index.ts';
import type { UbusFace } from '../payments/index.ts';
import type { VenueRoaming } from '../upstream/index.ts';

/** What `quote` and `purchase` show of a price (the merchant's Quote). */
export type QuoteRecord = Quote;

export type { GateCloseState, GateState };

export interface PurchaseOutcome {
  session: Session;
  toppedUp: boolean;
  gate: GateState;
  quote?: QuoteRecord;
}

/** The merchant's: the API edge builds it (checkArgs, paymentOf) and nothing after checks its types again. */
export type { PurchaseRequest };

/**
 * Who called an admin method: an admin over ubus (LuCI, `ubus call`, the CLI), MQTT's signed command channel, or a
 * RADIUS CoA-Request (which goes through ubus `change`'s path). Carried by the events a change makes (`rates`).
 */
export type CallOrigin = 'ubus' | 'mqtt' | 'coa';

/** A session's speed tier set anew, in force (or refused by the kernel: `session.rates` is what the journal holds). */
export interface RatesChanged {
  session: Session;
  /** The session's rates before the change (null: it had none). */
  previous: ClientRates | null;
  by: CallOrigin;
}

export interface GrantRequest {
  mac: string;
  seconds?: bigint;
  bytes?: bigint;
  ip?: string;
  user?: string;
  /** The plan the grant is of: its speed tier applies. */
  plan?: string;
  /** A retry key: a second grant with it is refused (ERR_PAYMENT_REPLAYED) instead of granting twice. */
  idempotencyKey?: string;
  /** Several devices per purchase: how many devices may share the grant (1 … 16). */
  devices?: number;
  /** Only adds to the MAC's live session (ubus `extend`); with none, ERR_SESSION_NOT_FOUND. */
  liveOnly?: boolean;
}

/** What the sales book answers: sums over [since, until), and from when it is complete. */
export interface SalesSums {
  readonly since: number;
  totals(since: number, until: number): Array<{ method: string; asset: string; amount: bigint; payments: number }>;
}

export interface SluiceBackend {
  now(): number;
  /** Roaming within the venue (main.venue; docs/roaming.md), when this router takes part. */
  readonly venue?: VenueRoaming | undefined;
  purchase(req: PurchaseRequest): Promise<PurchaseOutcome>;
  grant(req: GrantRequest): Promise<PurchaseOutcome>;
  quote(req: { plan?: string; amount?: bigint; steps?: bigint }): QuoteRecord;
  session(query: { mac?: string; id?: string }): Session | undefined;
  sessions(filter: { state?: SessionState; user?: string; mac?: string }): Session[];
  /** The router's sales book (sessions/sales-book.ts): every payment sold within its window, for ubus `sales`. */
  salesBook(): SalesSums;
  /** Ends the MAC's active session; throws ERR_SESSION_NOT_FOUND when there is none. */
  terminate(mac: string, cause: EndCause): Promise<{ session: Session; gate: GateCloseState }>;
  /**
   * New limits for a live session (by MAC or id), totals from its start, the same path as a RADIUS CoA-Request
   * (SessionManager.setLimits): written before they apply; a session already past them ends at once. Throws
   * ERR_SESSION_NOT_FOUND (no live session), ERR_SESSION_METRIC_MISMATCH (bytes for a time session).
   */
  change(query: { mac?: string; id?: string }, limits: { seconds?: bigint; bytes?: bigint }): Promise<Session>;
  /**
   * Moves a live session (by MAC or id) to another MAC: the same session, usage and allotment; the old MAC's gate
   * closes as the new one opens (SessionManager.move: on flash first). `gate` is the new MAC's, after the same bounded
   * wait as a purchase. Throws ERR_SESSION_NOT_FOUND, ERR_SESSION_MOVE_TARGET, ERR_SESSION_MOVING.
   */
  move?(
    query: { mac?: string; id?: string },
    toMac: string,
  ): Promise<{ session: Session; from: string; gate: GateState }>;
  /** `gate`: the least closed of the ended sessions' gates (`closed` when none ended). */
  logout(user: string): Promise<{ sessions: Session[]; gate: GateCloseState }>;
  pricing(): readonly PricingPlan[];
  /**
   * Several devices per purchase (a plan's `devices`): the code other devices type to join `mac`'s live session
   * (null when it takes one device); a device joining by code (throws ERR_DEVICE_*); a joined device removed (its gate
   * closes, the session goes on). Absent in backends without sessions of several devices.
   */
  joinCode?(mac: string): { session: Session; code: string | null };
  joinDevice?(code: string, mac: string): Promise<{ session: Session; gate: GateState }>;
  removeDevice?(mac: string): Promise<{ session: Session; gate: GateCloseState }>;
  /**
   * What the named payment plugin's method serves to its own ubus methods (payments/plugin.ts UbusMethod); null or
   * absent: the method does not run, and its ubus methods answer so.
   */
  paymentFace?(plugin: string): UbusFace | null;
  /** What the running payment methods add to a session in `session` (escrow: `escrow`); absent: nothing. */
  sessionFields?(session: Session): BlobmsgTable;
  /**
   * A live session's portal gate: `open`, or `pending` while the portal has not let the device through yet (a grant
   * or purchase for a MAC not on the portal: retried every tick). Lists show it so a paid-for device that is not
   * online yet is not shown as plainly active.
   */
  gateOf?(mac: string): 'open' | 'pending';
  /**
   * New rates for the MAC's live session, both directions (null: not limited that way), from now: journaled, then set
   * on its open gates (ubus `change` rate_down/rate_up, a RADIUS CoA-Request). Resolves with the session's view.
   * `by` (default ubus) is who asked, for the `rates` event the change makes.
   */
  changeRates?(mac: string, rates: ClientRates, by?: CallOrigin): Promise<Session>;
  stats(): BlobmsgTable;
  reload(): Promise<BlobmsgTable>;
}
