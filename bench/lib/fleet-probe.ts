// bench/fleet.ts: who does the work while the collectors store — CPU seconds of PostgreSQL (the postmaster and its
// backends), mosquitto, each collector and the bench itself, and what PostgreSQL's backends are doing, sampled from
// pg_stat_activity (running, waiting for a lock, for the WAL's fsync, or idle in a transaction: waiting for the
// collector's next statement). Said beside each figure, so "the database limits" is a measured claim.
import { readdirSync, readFileSync } from 'node:fs';
import type { Db } from '../../src/fleet/db/index.ts';

const TICK_S = 100;

/** user + system CPU seconds of one process (/proc/<pid>/stat); 0 once it is gone. */
export function cpuSeconds(pid: number, withChildren = false): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const own = Number(f[11]) + Number(f[12]);
    return (withChildren ? own + Number(f[13]) + Number(f[14]) : own) / TICK_S;
  } catch {
    return 0;
  }
}

/** Pids of the live processes whose parent is `ppid`. */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppidOf = Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppidOf === ppid) out.push(Number(d));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** The first pid whose command line contains `text` (mosquitto: its config's directory). */
export function pidOf(text: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(text)) return Number(d);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/** PostgreSQL's CPU seconds: the postmaster, what its exited children used, and its live backends. */
export function postgresCpu(dataDir: string): number {
  const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  return cpuSeconds(pid, true) + childrenOf(pid).reduce((a, c) => a + cpuSeconds(c), 0);
}

export interface Meter {
  /** Names and their CPU seconds so far. */
  read: () => Record<string, number>;
}

/**
 * CPU used between now and `done()`, per name: as a share of one core and, given the messages stored meanwhile, in
 * ms per message (what the load on the machine changes least: the cost, not the share it got).
 */
export function cpuWindow(meter: Meter): { done: (messages?: number) => string } {
  const t0 = Date.now();
  const before = meter.read();
  return {
    done(messages) {
      const s = (Date.now() - t0) / 1000;
      const after = meter.read();
      return Object.entries(after)
        .filter(([name, v]) => v !== (before[name] ?? 0))
        .map(([name, v]) => {
          const used = v - (before[name] ?? 0);
          const each = messages ? ` (${((used * 1000) / messages).toFixed(2)} ms/msg)` : '';
          return `${name} ${((used / s) * 100).toFixed(0)}%${each}`;
        })
        .join(', ');
    },
  };
}

/** Samples what the fleet database's other backends are doing, every 100 ms, until stopped. */
export function sampleBackends(db: Db, database: string): { stop: () => Promise<string> } {
  const tally = new Map<string, number>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const rows = await db.query<{ what: string; n: string }>(
        `SELECT CASE WHEN state = 'active' AND wait_event IS NULL THEN 'running'
                     WHEN state = 'active' AND wait_event_type = 'Lock' THEN 'lock'
                     WHEN state = 'active' AND wait_event IN ('WALSync', 'WALWrite') THEN 'WAL'
                     WHEN state = 'active' THEN 'other'
                     WHEN state LIKE 'idle in transaction%' THEN 'in a transaction' END AS what, count(*)::text AS n
         FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
           AND state <> 'idle' GROUP BY 1`,
        [database],
      );
      samples++;
      for (const r of rows) tally.set(r.what, (tally.get(r.what) ?? 0) + Number(r.n));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const parts = ['running', 'lock', 'WAL', 'in a transaction', 'other']
        .filter((k) => tally.has(k))
        .map((k) => `${k} ${((tally.get(k) ?? 0) / Math.max(1, samples)).toFixed(2)}`);
      return `backends busy on average: ${parts.join(', ') || 'none'}`;
    },
  };
}
