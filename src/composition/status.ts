/** What the daemon tells of itself: ubus `stats` (each part's own figures: api/stats.ts) and the upstream status. */
import type { Config, ConfigReloader } from '../config/index.ts';
import type { SessionManager } from '../sessions/index.ts';
import type { BlobmsgTable } from '../ubus/index.ts';
import { planView, statsReply } from '../api/index.ts';
import type { StatusInfo } from '../upstream/index.ts';
import type { HttpEndpoint } from '../http/index.ts';
import { VERSION } from '../version.ts';
import type { Parts } from './parts.ts';

export function daemonStats(
  { sessions, meter, gates, kernelQuota, store, upstream, payments }: Parts,
  config: ConfigReloader,
  startedAt: number,
  /** The LAN endpoint, once it listens. */
  lan: HttpEndpoint | null,
): BlobmsgTable {
  return statsReply({
    startedAt,
    config: config.config,
    restartRequired: config.restartRequired,
    problems: config.problems,
    sessions,
    meter,
    gates,
    kernelQuota,
    journal: store,
    upstream,
    payments: payments.stats(),
    http: lan,
  });
}

/** What upstream status reports tell (MQTT's retained status). */
export function upstreamStatus(startedAt: number, sessions: SessionManager, config: Config): StatusInfo {
  return {
    version: VERSION,
    uptime_s: Math.floor((Date.now() - startedAt) / 1000),
    sessions: { ...sessions.stats() },
    pricing: config.pricing.map(planView),
  };
}
