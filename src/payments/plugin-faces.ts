/**
 * What a payment-method plugin serves (payments/plugin.ts is the contract it opens by): over ubus, the methods it
 * registers and the fields it adds to a session; over the LAN endpoint, its routes, the requests they get and their
 * answers, its pay-page form and its x402 schemes and their running faces. Structural: payments/ imports neither
 * api/ nor http/, which implement the other side. A method adds its own field to UbusFace and LanFace in its folder (a
 * module augmentation: `declare module '../plugin-faces.ts' { interface UbusFace { … } }`), so this file names none.
 */
import type { Config } from '../config/index.ts';
import { SluiceError, type AnyErrorCode } from '../errors.ts';
import type { Log } from '../log.ts';
import type { Session } from '../sessions/index.ts';
import type { Quote } from './types.ts';

/**
 * What an opened method serves over ubus: what its own ubus methods (PluginRegistrars.ubusMethod) call, and the fields
 * it adds to a session's `session` reply. A method adds its own field in its folder (a module augmentation:
 * `declare module '../plugin.ts' { interface UbusFace { … } }`), so this file names none.
 */
export interface UbusFace {
  /** Added to ubus `session`'s session (escrow: `escrow`, its deposit, receipts and close); null: nothing to add. */
  sessionFields?: (session: Session) => Record<string, unknown> | null;
}

/** A ubus argument's policy, as api/args.ts checks it (structural: payments/ does not import api/). */
export interface UbusArgSpec {
  kind: 'mac' | 'string' | 'amount' | 'count' | 'table' | 'boolean';
  required?: boolean;
  oneOf?: readonly string[];
  maxLength?: number;
}

/**
 * A ubus method of the `sluice` object a method brings (docs/ubus-api.md; api/methods.ts adds it to its table, so it
 * exists, and the ACL names it, whether or not the method runs). Its handler gets the arguments as api/args.ts checked
 * them against `args` (a count as bigint, a table as a table), and the method's own face: null when it does not run.
 */
export interface UbusMethod {
  args: Readonly<Record<string, UbusArgSpec>>;
  adminOnly: boolean;
  handler(
    args: Readonly<Record<string, unknown>>,
    face: UbusFace | null,
  ): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/**
 * What api/args.ts's InvalidArgumentError says (the same code, message and details; payments/ does not import api/).
 */
export function invalidArgument(argument: string, reason: string): SluiceError {
  return new SluiceError('ERR_INVALID_ARGUMENT', `${argument}: ${reason}`, { details: { argument } });
}

/**
 * What a running method serves over the LAN endpoint: what its own LAN routes (PluginRegistrars.lanRoute) call; each
 * method adds its field in its folder, as to UbusFace.
 */
export interface LanFace {}

/**
 * A request to one of a method's LAN routes, as http/server.ts hands it over. The endpoint's rules run before the
 * handler and for every route alike, so no method can skip them: HTTP/1.x only, the URL bound, the per-IP rate
 * limits (a `paying` route also takes the payment attempts' bucket, http.rate_limit), a route of a method configured
 * but down (its state file damaged) answering 503 ERR_PAYMENT_METHOD_UNAVAILABLE, a body read only through `json`
 * (bounded; a larger one is answered 413 and drained), and the LAN-only refusal in `mac`.
 */
export interface LanRequest {
  readonly url: URL;
  /** The request's source IP. */
  readonly ip: string;
  /** A request header (the first value when repeated), by its lowercase name. */
  header(name: string): string | undefined;
  /** The body as a JSON object of at most `max` bytes, else refused with the route's own `code` naming the `shape`. */
  json(max: number, code: AnyErrorCode, shape: string): Promise<Record<string, unknown>>;
  /**
   * The caller's MAC: the portal client with the request's source IP. ERR_HTTP_CLIENT_UNKNOWN when the portal lists
   * none (not a client of this LAN), ERR_HTTP_CLIENT_AMBIGUOUS when two clients have it.
   */
  mac(): Promise<string>;
  /**
   * Buys for `mac` exactly as ubus `purchase` with this `payment` table does, and answers as every purchase on the
   * endpoint does: the session, whether it topped up a live one, what this purchase added, the gate.
   */
  purchase(mac: string, payment: Readonly<Record<string, unknown>>, plan?: string): Promise<unknown>;
  /** The token a plan is sold in (`{}`: the default plan's). */
  quote(input: { plan?: string }): Pick<Quote, 'asset'>;
  /** The session of a MAC (live or ended), as ubus `session` reads it. */
  session(mac: string): Session | undefined;
  /** The sessions of a user (a RADIUS user, a voucher code), as ubus `sessions` {user} reads them. */
  sessionsOf(user: string): Session[];
  /**
   * Moves a live session to `mac` (on flash first: SessionManager.move) and answers as the endpoint's restores do:
   * the session, `restored: true`, the MAC it came `from`, the gate.
   */
  moveHere(session: Session, mac: string): Promise<unknown>;
  /** The route's method offers its pay-page form now (PluginRegistrars.payForm; false: it brings none). */
  readonly formOffered: boolean;
  readonly log: Log | undefined;
}

/** A LAN route's answer: sent as JSON (bigints as decimal strings), with these headers. */
export interface LanAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * A route of the LAN endpoint a method brings (PluginRegistrars.lanRoute; http/server.ts loops over them, as
 * api/methods.ts over the registered ubus methods):
 * it exists whether or not the method runs, and its handler gets the method's running LAN face, or null. A route that
 * is not a method's (the pay page, /buy, /session, restores, devices, PC-sync) stays in http/.
 */
export interface LanRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** A payment attempt, counted in http.rate_limit's bucket: always (true), or when it carries PAYMENT-SIGNATURE. */
  readonly paying?: true | 'signed';
  /**
   * While its method is configured but down, the route answers 503 ERR_PAYMENT_METHOD_UNAVAILABLE before its handler
   * runs, unless this says it still serves (POST /voucher: RADIUS's vouchers while the printed book is damaged).
   */
  servesWhileDown?(req: LanRequest): boolean;
  /**
   * The route's own answer to a code it answers otherwise than the code's HTTP status (errors.ts ERRORS); undefined:
   * the code's.
   */
  statusOf?(code: string): number | undefined;
  handler(req: LanRequest, face: LanFace | null): Promise<LanAnswer>;
}

/**
 * A pay-page form a method brings (the voucher form): GET /'s `methods` flags it under `key` whether or not it is
 * offered, the page shows it only when it is, and an offered one makes /captive say this router sells.
 */
export interface PayForm {
  readonly key: string;
  /** Offered on this config; `running`: the method opened (its state read back). */
  offered(config: Config, running: boolean): boolean;
}

/** A method's x402 scheme as the LAN endpoint's /buy and /plans name it (known whether or not the method runs). */
export interface X402Scheme {
  /** The scheme its payloads name (`accepted.scheme`). */
  readonly scheme: string;
  /** The payment method a payload of the scheme is bought with (`payment.method`). */
  readonly method: string;
  /** Its key in /plans: the `methods` flag and each plan's offer. */
  readonly planKey: string;
  /** Each plan lists its offer even when the method is off (null): the page has always read `x402` so. */
  readonly alwaysListed?: true;
  /** Takes a payload that names no running scheme (in the list's order; none: the first such scheme's method). */
  readonly takesUnnamed?: true;
  /** A refusal's `details.reason` is the 402's `error` (the spec's reason, which the client acts on). */
  readonly reasonAsError?: true;
  /** A refusal's fields for the scheme's offer (the spec's corrective channel and voucher states), from its details. */
  readonly corrective?: (details: Record<string, unknown> | undefined) => Record<string, unknown> | undefined;
  /** Running, it makes /captive say this router sells (exact and batch-settlement set it; upto does not). */
  readonly sells?: true;
}

/** A running method's x402 face: its offer for a quote and the settle it answers a purchase with. */
export interface X402Face extends X402Scheme {
  /** Offered now (upto: once the facilitator's /supported says so). */
  offered(): boolean;
  /** The 402's `accepts` entry for a quote; null: not offered for it; throws: the method cannot sell this plan. */
  offer(quote: Quote): Record<string, unknown> | null;
  /** The PAYMENT-RESPONSE of a purchase paid with this reference, or null. */
  settlementOf(reference: string): unknown;
}
