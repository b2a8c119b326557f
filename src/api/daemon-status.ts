/** What the daemon tells of itself: ubus `stats` (each part's own figures: stats.ts) and the upstream status. */
import type { ConfigReloader } from '../config/index.ts';
import type { BlobmsgTable } from '../ubus/index.ts';
import { damagedTables } from '../storage/index.ts';
import { declaredLeaseTtlS, type StatusInfo } from '../upstream/index.ts';
import { VERSION } from '../version.ts';
import { statsReply, type StatsSources } from './stats.ts';
import { planView } from './view.ts';

/** The daemon's parts as its status reads them: the running config from its reloader, the LAN endpoint as it is now. */
export interface DaemonParts extends Omit<
  StatsSources,
  'config' | 'restartRequired' | 'problems' | 'payments' | 'http'
> {
  config: ConfigReloader;
  sessions: { stats(): object };
  meter: { stats(): { tick_ms_p50: number } };
  metering?: { stats(): object; problem: string | null } | null;
  journal: { stats(): { writeFailures: number; failing: { code: string } | null } };
  payments: { stats(): Readonly<Record<string, object>> };
  /** The LAN endpoint, once it listens. */
  http(): { stats(): object } | null;
}

export function daemonStats(p: DaemonParts): BlobmsgTable {
  const { config } = p;
  return statsReply({
    ...p,
    config: config.config,
    restartRequired: config.restartRequired,
    problems: config.problems,
    payments: p.payments.stats(),
    http: p.http(),
  });
}

/**
 * What upstream status reports tell (MQTT's retained status), with the few `stats` figures a fleet server shows as
 * the router's health: a fleet operator sees a router whose flash fails or whose config runs with problems without
 * logging in to it.
 */
export function upstreamStatus({ startedAt, sessions, meter, journal, config, metering }: DaemonParts): StatusInfo {
  const written = journal.stats();
  const leaseTtl = declaredLeaseTtlS(config.config.main);
  return {
    version: VERSION,
    uptime_s: Math.floor((Date.now() - startedAt) / 1000),
    sessions: { ...sessions.stats() },
    pricing: config.config.pricing.map(planView),
    health: {
      rss_mb: Math.round((process.memoryUsage.rss() / 1048576) * 10) / 10,
      meter_tick_ms: meter.stats().tick_ms_p50,
      journal_write_failures: written.writeFailures,
      journal_failing: written.failing?.code ?? null,
      damaged_tables: Object.values(damagedTables()).reduce((a, b) => a + b, 0),
      config_problems: config.problems.length,
      // The hotspot metered where its customers are not: the portal's counters meter instead (gate/hotspot.ts).
      metering_problem: metering?.problem ?? null,
    },
    // How long this router's kernel passes a leased device unrenewed: the fleet never moves its leases sooner.
    ...(leaseTtl !== null && { lease_ttl: leaseTtl }),
  };
}
