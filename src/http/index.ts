/**
 * The daemon's entry to the LAN endpoint: starts it when http.listen is set and x402, batch_settlement or radius is
 * enabled, else says why not.
 */
import type { SluiceBackend } from '../api/index.ts';
import type { Config } from '../config/index.ts';
import { toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { BatchSettlementMethod, UptoMethod, X402Method } from '../payments/index.ts';
import type { Valve } from '../portal/index.ts';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientDirectory, type ListedClient } from './client-directory.ts';
import { openFileLimit, totalConnectionBound } from './connection-limits.ts';
import { HttpEndpoint } from './server.ts';
import { NonceLedger } from './pcsync-nonces.ts';

export { HttpEndpoint } from './server.ts';
export { NonceLedger, PCSYNC_NONCES_FILE } from './pcsync-nonces.ts';
export { PCSYNC_HEADERS, pcsyncSignature } from './pcsync-verify.ts';
export { ClientDirectory, type ClientDirectoryOptions, type ListedClient } from './client-directory.ts';
export { MAX_PER_IP, MAX_TOTAL, openFileLimit, totalConnectionBound } from './connection-limits.ts';

/**
 * Where the clients' addresses come from first: the meter's ticks (Meter.clientAddresses), from a tick dispatched at
 * most `maxAgeMs` ago; null means "read it".
 */
export type TickClientList = (maxAgeMs: number) => Promise<readonly ListedClient[] | null>;

/**
 * IP → MAC for LAN requests: shared reads of the portal's list. The list the meter's ticks read anyway comes first
 * (`fromTicks`: no portal call of its own, and openNDS runs a script per listed client for each); when the ticks give
 * none, a read of the portal's own queued behind every gate command and meter read ('lookup' priority), so requests
 * neither multiply portal calls nor delay a gate.
 */
export function portalClientDirectory(valve: Valve, fromTicks?: TickClientList): ClientDirectory {
  return new ClientDirectory({ read: async (maxAgeMs) => (await fromTicks?.(maxAgeMs)) ?? (await valve.snapshot('lookup')).clients });
}

/** The pay page ships next to the bundle: /usr/share/sluice/portal on the router, dist/portal in a checkout. */
function portalDir(): string | null {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'portal');
  return existsSync(join(dir, 'index.html')) ? dir : null;
}

export async function startLanEndpoint(config: Config, x402: X402Method | null, backend: SluiceBackend, valve: Valve, log: Log,
  batch: BatchSettlementMethod | null = null, upto: UptoMethod | null = null, fromTicks?: TickClientList): Promise<HttpEndpoint | null> {
  if (config.http.host === '') return null;
  // The endpoint sells with x402 (exact, batch-settlement, upto), its pay page also takes RADIUS vouchers, and it takes
  // PC-sync logouts: any one is reason to run it.
  const pcsyncOn = config.http.pcsyncSecret !== '';
  if (!x402 && !batch && !upto && !config.radius.enabled && !pcsyncOn) {
    log.warn('http.listen is set but neither x402, batch_settlement, upto nor radius is enabled, nor http.pcsync_secret set: the LAN endpoint stays off');
    return null;
  }
  try {
    const directory = portalClientDirectory(valve, fromTicks);
    const maxConnections = totalConnectionBound(openFileLimit());
    const endpoint = await HttpEndpoint.start({
      host: config.http.host, port: config.http.port, rateLimitPerMinute: config.http.rateLimit, backend, x402, batch, upto, vouchers: config.radius.enabled,
      portalDir: portalDir(),
      pcsync: pcsyncOn
        ? { secret: config.http.pcsyncSecret, windowMs: config.http.pcsyncWindowMs, nonces: await NonceLedger.open(config.main.stateDir, config.http.pcsyncWindowMs) }
        : null,
      captive: { portalUrl: config.http.portalUrl, venueUrl: config.http.venueUrl },
      macOf: (ip) => directory.macOf(ip),
      maxConnections,
      log,
    });
    log.info('LAN endpoint listening', { host: config.http.host, port: endpoint.port, max_connections: maxConnections });
    return endpoint;
  } catch (err) {
    const e = toSluiceError(err);
    log.error('LAN endpoint not started', { code: e.code, reason: e.message });
    return null;
  }
}
