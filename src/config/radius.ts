/**
 * The `radius` section: accounting servers, the voucher (auth) port, the Disconnect/CoA listener and its clients, and
 * delivery tuning. `server` may name several servers (a UCI list, or one option with hosts separated by spaces): the
 * first is primary, the others are failover in order. Validated only when enabled, like every upstream section.
 */
import type { ConfigProblem, SectionReader } from './reader.ts';
import { isHost, parseInteger, parseSecondsToMs, type Parsed } from './values.ts';

export interface RadiusConfig {
  enabled: boolean;
  /** Hosts in failover order (`radius.server`). */
  servers: string[];
  authPort: number;
  acctPort: number;
  secret: string;
  nasIdentifier: string;
  /** NAS-IP-Address / NAS-IPv6-Address; empty = the local address the router uses to reach the first server. */
  nasIp: string;
  /** Called-Station-Id; empty = nas_identifier. */
  calledStationId: string;
  interimIntervalMs: number;
  /** Port sluice listens on for Disconnect/CoA requests (RFC 5176, default 3799; 0 = off). */
  coaPort: number;
  /** Address the Disconnect/CoA listener binds (default all). */
  coaListen: string;
  /** Who may send Disconnect/CoA: addresses (`radius.das_client`); empty = the accounting servers. */
  dasClients: string[];
  /** Secret of Disconnect/CoA requests; empty = `secret`. */
  dasSecret: string;
  /** First retransmission timeout; doubles per retry. */
  timeoutMs: number;
  /** Retries per server before failing over to the next. */
  retries: number;
  /** Accounting requests in flight at once. */
  maxInFlight: number;
  /** Longest pause between delivery attempts while no server answers (the backoff doubles up to it). */
  backoffMaxMs: number;
  /** Bytes the durable accounting queue may hold on flash before the oldest Interim-Updates are dropped. */
  queueMaxBytes: number;
}

export const RADIUS_DEFAULTS = {
  auth_port: 1812,
  acct_port: 1813,
  interim_interval: 300,
  coa_port: 3799,
  timeout: 3,
  retries: 2,
  max_inflight: 32,
  queue_max: 1 << 20,
  backoff_max: 60,
} as const;

const port =
  (min: number) =>
  (v: string): Parsed<number> =>
    parseInteger(v, min, 65535);

/** Space-separated or UCI list of hosts; every one must be a host name or an IP address. */
function hosts(r: SectionReader, option: string, required: boolean): string[] {
  const raw = r.raw(option);
  if (raw === undefined) {
    if (required) r.report(option, 'is required (host name or IP address; several separated by spaces for failover)');
    return [];
  }
  const items = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(/\s+/)).filter((v) => v !== '');
  const bad = items.filter((h) => !isHost(h));
  if (bad.length > 0) {
    r.report(option, 'must be host names or IP addresses separated by spaces', bad.join(' '));
    return [];
  }
  if (required && items.length === 0) r.report(option, 'is required (host name or IP address)');
  return items.map((h) => (h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h));
}

export function readRadiusSection(r: SectionReader, enabled: boolean, routerId: string): RadiusConfig {
  const d = RADIUS_DEFAULTS;
  const ip = (v: string): string | undefined =>
    v === '' || (isHost(v) && /^[0-9a-fA-F:.]+$/.test(v)) ? undefined : 'must be an IPv4 or IPv6 address';
  return {
    enabled,
    servers: hosts(r, 'server', true),
    authPort: r.parsed('auth_port', d.auth_port, port(1)),
    acctPort: r.parsed('acct_port', d.acct_port, port(1)),
    secret: r.required('secret', '', (v) => ({ ok: true, value: v }), 'is required (the RADIUS shared secret)'),
    nasIdentifier: r.string('nas_identifier', routerId, (v) =>
      v.length <= 253 ? undefined : 'must be at most 253 characters',
    ),
    nasIp: r.string('nas_ip', '', ip),
    calledStationId: r.string('called_station_id', '', (v) =>
      v.length <= 253 ? undefined : 'must be at most 253 characters',
    ),
    interimIntervalMs: r.parsed('interim_interval', d.interim_interval * 1000, (v) => parseSecondsToMs(v, 10, 86400)),
    coaPort: r.parsed('coa_port', d.coa_port, port(0)),
    coaListen: r.string('coa_listen', '', ip),
    dasClients: hosts(r, 'das_client', false),
    dasSecret: r.string('das_secret', ''),
    timeoutMs: r.parsed('timeout', d.timeout * 1000, (v) => parseSecondsToMs(v, 0.1, 60)),
    retries: r.parsed('retries', d.retries, (v) => parseInteger(v, 0, 10)),
    maxInFlight: r.parsed('max_inflight', d.max_inflight, (v) => parseInteger(v, 1, 128)),
    backoffMaxMs: r.parsed('backoff_max', d.backoff_max * 1000, (v) => parseSecondsToMs(v, 1, 3600)),
    queueMaxBytes: r.parsed('queue_max', d.queue_max, (v) => parseInteger(v, 64 * 1024, 64 * 1024 * 1024)),
  };
}

export type { ConfigProblem };
