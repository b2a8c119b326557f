/** What the daemon tells of itself: ubus `stats` (each part's own figures: api/stats.ts) and the upstream status. */
import type { ConfigReloader } from '../config/index.ts';
import type { BlobmsgTable } from '../ubus/index.ts';
import { planView, statsReply } from '../api/index.ts';
import { damagedTables } from '../storage/index.ts';
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

/**
 * What upstream status reports tell (MQTT's retained status), with the few `stats` figures a fleet server shows as
 * the router's health: a fleet operator sees a router whose flash fails or whose config runs with problems without
 * logging in to it.
 */
export function upstreamStatus(
  startedAt: number,
  { sessions, meter, store }: Pick<Parts, 'sessions' | 'meter' | 'store'>,
  config: ConfigReloader,
): StatusInfo {
  const journal = store.stats();
  return {
    version: VERSION,
    uptime_s: Math.floor((Date.now() - startedAt) / 1000),
    sessions: { ...sessions.stats() },
    pricing: config.config.pricing.map(planView),
    health: {
      rss_mb: Math.round((process.memoryUsage.rss() / 1048576) * 10) / 10,
      meter_tick_ms: meter.stats().tick_ms_p50,
      journal_write_failures: journal.writeFailures,
      journal_failing: journal.failing?.code ?? null,
      damaged_tables: Object.values(damagedTables()).reduce((a, b) => a + b, 0),
      config_problems: config.problems.length,
    },
  };
}
