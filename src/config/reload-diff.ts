/**
 * What a reload may apply and what takes a restart (pure). The daemon is started with one config; a reload compares
 * the file's new config with that one, never with the last reload, so an option changed twice and back is no longer
 * reported.
 */
import type { Config } from './types.ts';

/** Options of main that need a restart (by their UCI names, as operators know them): the rest applies on reload. */
export const RESTART_OPTIONS = {
  stateDir: 'main.state_dir',
  ndsctl: 'main.ndsctl',
  ndsctlSocket: 'main.ndsctl_socket',
  portal: 'main.portal',
  pollIntervalMs: 'main.poll_interval',
  ndsctlTimeoutMs: 'main.ndsctl_timeout',
  workers: 'main.workers',
  ubusSocket: 'main.ubus_socket',
  leaveForeignClients: 'main.leave_foreign_clients',
  portalOutputMax: 'main.portal_output_max',
  minReadIntervalMs: 'main.min_read_interval',
  kernelQuota: 'main.kernel_quota',
  nft: 'main.nft',
  shapeDevices: 'main.shape_device',
  tc: 'main.tc',
  venue: 'main.venue',
  venuePresentWindowMs: 'main.venue_present_window',
  venueLeaseTtlMs: 'main.venue_lease_ttl',
} as const satisfies Partial<Record<keyof Config['main'], string>>;
type RestartKey = keyof typeof RESTART_OPTIONS;

/** The restart-only options whose value in `next` differs from what the engine was started with. */
export function restartRequired(running: Config['main'], next: Config['main']): string[] {
  return (Object.keys(RESTART_OPTIONS) as RestartKey[])
    .filter((key) => JSON.stringify(next[key]) !== JSON.stringify(running[key]))
    .map((key) => RESTART_OPTIONS[key]);
}

/** `next` with the restart-only options as the engine runs them, so `stats` never shows a value not in use. */
export function asRunning(next: Config, running: Config['main']): Config {
  const main = { ...next.main };
  for (const key of Object.keys(RESTART_OPTIONS) as RestartKey[])
    (main as Record<RestartKey, unknown>)[key] = running[key];
  return { ...next, main };
}

/**
 * The config as the daemon runs it given its command line: `--ubus-socket` replaces `main.ubus_socket`, so `stats`
 * shows the socket in use and a reload never reports the file's (overridden) value as needing a restart.
 */
export function withOverrides(config: Config, overrides: { ubusSocket?: string }): Config {
  if (overrides.ubusSocket === undefined) return config;
  return { ...config, main: { ...config.main, ubusSocket: overrides.ubusSocket } };
}

/** What the engine was started with, beyond main: parts built once at start (their switch, their listener). */
export interface RunningParts {
  main: Config['main'];
  /**
   * The LAN endpoint's section as it runs: its rate limiter, PC-sync and captive URLs as started; its address as
   * started or as the last reload moved it (http.listen applies on reload: http/index.ts rebinds).
   */
  http: Config['http'];
  radius: boolean;
  x402: boolean;
  escrow: boolean;
  batchSettlement: boolean;
  /** Absent: the daemon predates the section (off). */
  upto?: boolean;
  /** The `cashu` method (and TollGate's door); absent: off. */
  tollgate?: boolean;
}

/**
 * Everything in `next` that only a restart applies, by UCI name: main's restart-only options, the LAN endpoint's
 * rate limit and the settings it is set up with. The LAN endpoint's address (http.listen) moves on reload
 * (listenMoved); the plugins (radius, x402, escrow, batch_settlement, upto, tollgate) switch on and off on reload
 * (their methods open then, a method's own door or sink opens, moves or closes: payments/plugin-host.ts); every other
 * setting applies on reload.
 */
export function reloadDiff(running: RunningParts, next: Config): string[] {
  const out = restartRequired(running.main, next.main);
  if (next.http.rateLimit !== running.http.rateLimit) out.push('http.rate_limit');
  // The PC-sync route and its nonce file are set up with the endpoint.
  if (next.http.pcsyncSecret !== running.http.pcsyncSecret) out.push('http.pcsync_secret');
  if (next.http.pcsyncWindowMs !== running.http.pcsyncWindowMs) out.push('http.pcsync_window');
  if (next.http.portalUrl !== running.http.portalUrl) out.push('http.portal_url');
  if (next.http.venueUrl !== running.http.venueUrl) out.push('http.venue_url');
  return out;
}

/** Whether `next` moves the LAN endpoint (http.listen: another address or port, or switched on or off). */
export function listenMoved(running: Config['http'], next: Config['http']): boolean {
  return next.host !== running.host || next.port !== running.port;
}

/** The config stats shows after a reload: restart-only values as running, the LAN endpoint's section as started. */
export function runningConfig(next: Config, running: RunningParts): Config {
  return { ...asRunning(next, running.main), http: running.http };
}
