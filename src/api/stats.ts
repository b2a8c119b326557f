/**
 * The `stats` reply: each part's own figures under its name, the config as it runs (secrets redacted: redactConfig),
 * the options changed in the file that only a restart applies, and the problems of the config it runs on anyway.
 */
import { redactConfig, type Config, type ConfigProblem } from '../config/index.ts';
import { damagedTables } from '../storage/index.ts';
import type { BlobmsgTable } from '../ubus/index.ts';
import { toBlobmsgTable } from './plain.ts';

/** A part that reports its own figures. */
interface Figures {
  stats(): object;
}

export interface StatsSources {
  startedAt: number;
  config: Config;
  restartRequired: readonly string[];
  problems: readonly ConfigProblem[];
  sessions: Figures;
  meter: Figures;
  gates: Figures;
  journal: Figures;
  upstream: Figures;
  kernelQuota: Figures | null;
  /** Where the hotspot is metered (the device(s), from where, by whose counters) and what is wrong there. */
  metering?: Figures | null;
  /** sluice's own gate table (IPv6, and the stops of closes the portal has not answered). */
  ipv6Gate?: Figures | null;
  /**
   * The payment methods' figures, each under its key (payments' PaymentPlugins.stats): `trials`, free trials granted
   * and refused since start and the devices the ledger remembers, or {available: false} when the ledger is damaged.
   */
  payments: Readonly<Record<string, object>>;
  /** The LAN endpoint (null: not listening): the methods it cannot serve, PC-sync's nonce figures. */
  http?: Figures | null;
}

export function statsReply(s: StatsSources, now = Date.now()): BlobmsgTable {
  const mem = process.memoryUsage();
  return toBlobmsgTable({
    router_id: s.config.main.routerId,
    uptime_s: Math.floor((now - s.startedAt) / 1000),
    rss_mb: Math.round((mem.rss / 1048576) * 10) / 10,
    sessions: s.sessions.stats(),
    meter: s.meter.stats(),
    gates: s.gates.stats(),
    metering: s.metering?.stats() ?? null,
    kernel_quota: s.kernelQuota?.stats() ?? { enabled: false },
    gate_table: s.ipv6Gate?.stats() ?? { enabled: false },
    ...s.payments,
    http: s.http ? s.http.stats() : { listening: false },
    journal: s.journal.stats(),
    // State tables refused at an open since start for damage (storage/json-table.ts), by file: {"x402.json": 1}.
    damaged_tables: damagedTables(),
    upstream: s.upstream.stats(),
    config: redactConfig(s.config).main,
    // The values above are the running ones.
    restart_required: s.restartRequired,
    config_problems: s.problems.map((p) => ({ path: p.path, reason: p.reason, effect: p.effect ?? null })),
  });
}
