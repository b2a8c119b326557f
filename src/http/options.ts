/** What the LAN endpoint is opened with (server.ts's HttpEndpoint); the sale and the own routes read parts of it. */
import type { Log } from '../log.ts';
import type { SluiceBackend } from '../api/index.ts';
import type { LanMethod, X402Face, X402Scheme } from '../payments/index.ts';
import type { PcSyncOptions } from './pcsync.ts';

export interface HttpEndpointOptions {
  host: string;
  port: number;
  /**
   * Payment attempts (/buy with PAYMENT-SIGNATURE, a method's paying route) per minute per client IP
   * (http.rate_limit).
   */
  rateLimitPerMinute: number;
  backend: SluiceBackend;
  /**
   * The running methods' x402 faces (the plugin list's order), offered side by side in the 402 and /plans. None
   * when no scheme runs: the plans carry no offer and /buy answers 501.
   */
  schemes?: readonly X402Face[];
  /**
   * Every x402 scheme the plugin list registered, running or not (PaymentPlugins.lan); default: the built-in list's.
   */
  knownSchemes?: readonly X402Scheme[];
  /**
   * Each payment method's routes, payers and running face (PaymentPlugins.lan), in the plugin list's order;
   * default: the list's, none running.
   */
  methods?: readonly LanMethod[];
  /**
   * The methods' pay-page forms offered now, by key (PaymentPlugins.lan's `forms`; absent: not offered): the plans
   * flag each, so the page shows a form only then, /captive says the router sells, and the form's method's routes
   * sell (LanRequest.formOffered).
   */
  forms?: Readonly<Record<string, boolean>>;
  /**
   * Payment methods configured but not running (their state file cannot be read back), by name: their routes answer
   * 503 ERR_PAYMENT_METHOD_UNAVAILABLE, the others work.
   */
  unavailable?: readonly string[];
  /**
   * The MAC of the portal client with this IP, or null (portal client list); throws ERR_HTTP_CLIENT_AMBIGUOUS when two
   * clients have it. The daemon passes a ClientDirectory's: shared reads, never one per request.
   */
  macOf(ip: string): Promise<string | null>;
  /** Open connections in total; default MAX_TOTAL (the daemon passes its share of the descriptor limit). */
  maxConnections?: number;
  /** Open connections per client IP; default MAX_PER_IP. */
  maxConnectionsPerIp?: number;
  /** Directory with the pay page (index.html, portal.js); null: /portal answers 404. */
  portalDir?: string | null;
  /** PC-sync logouts (http.pcsync_secret set); null or absent: POST /pcsync/logout answers 404. */
  pcsync?: PcSyncOptions | null;
  /** What GET /captive announces (http.portal_url, or the endpoint's own /portal; http.venue_url, '' for none). */
  captive?: { portalUrl: string; venueUrl: string };
  /**
   * `portal 'sluice'`: sluice's gate sends an unpaid device's HTTP for any host here; such a request (its Host names
   * another) is answered with a redirect to the pay page (own-routes.ts probeRedirect).
   */
  answerProbes?: boolean;
  log?: Log;
}
