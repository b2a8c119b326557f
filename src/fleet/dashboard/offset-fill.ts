/**
 * The days of the offsets the operators' zones take (docs/fleet.md, "Time zone"), kept and filled in the background
 * when a zone is set (the dashboard's start: the fleet's and every user's own; a user's change on Settings; a page
 * that found a day not kept yet), never in a page view: the database lists the offset (the payments' SHARE lock for
 * the instant of one row, its wait bounded by lock_timeout) and then fills its days a slice at a time, newest first,
 * each slice its own short transaction (migration 13), so a collector's payment waits at most for one slice and only
 * when its day is one that slice is filling. Until an offset is complete the Revenue page reads the days not filled
 * yet from the quarters (exact, slower) and says so. Once it is, and for UTC's days, the fleet's totals per day,
 * method and asset are summed for its past days (migration 14), a few weeks per transaction, and again every
 * `totalsEveryMs` for the days that have passed since.
 */
import type { Db } from '../db/index.ts';

/** Days per slice: a year of 100 routers paying in every quarter is 28,800 quarter rows a day. */
export const FILL_SLICE_DAYS = 2;
/**
 * Days per transaction of the fleet's totals (the payments' writes wait for it): 100 routers' 3 methods, 9,000 rows.
 */
export const TOTALS_SLICE_DAYS = 30;
const LOCK_TIMEOUT = '2s';
const RETRY_MS = 5_000;
const TOTALS_EVERY_MS = 600_000;

/**
 * The offsets (minutes east of UTC, whole quarter hours, not 0) the zone's midnights take from the first quarter the
 * fleet holds to a year ahead, by the database's own zone rules. An offset of seconds (an old local mean time) is no
 * offset kept: such days read the payments.
 */
export async function zoneOffsets(db: Db, zone: string): Promise<number[]> {
  const rows = await db.query<{ seconds: number }>(
    `SELECT DISTINCT seconds FROM (
       SELECT extract(epoch FROM d::date::timestamp - ((d::date::timestamp AT TIME ZONE $1::text) AT TIME ZONE 'UTC'))
         ::int AS seconds
       FROM generate_series(coalesce((SELECT min(quarter) FROM revenue_quarters), now())::date - 1,
         now()::date + 400, interval '1 day') d) x
     WHERE seconds % 900 = 0`,
    [zone],
  );
  return rows.map((r) => Number(r.seconds) / 60).filter((m) => m !== 0);
}

export interface OffsetFillOptions {
  db: Db;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  sliceDays?: number;
  /** How often the zones kept have their days passed since summed into the fleet's totals. */
  totalsEveryMs?: number;
}

/** One at a time, in the order asked: the zones whose offsets are to be kept and filled. */
export class OffsetFill {
  private readonly queue: string[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly zones = new Set<string>(['UTC']);
  /** Zones whose latest try failed: they wait out RETRY_MS, and idle() does not wait for them. */
  private readonly failing = new Set<string>();
  /** A fill or the totals wrote rows no ANALYZE has seen yet: cleared only by one that succeeded. */
  private needsAnalyze = false;
  /** The run is in its retry pause (only after a failure). */
  private pausing = false;
  /** idle() callers, woken to look again when the run pauses or ends. */
  private idleWaiters: Array<() => void> = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: OffsetFillOptions) {
    this.timer = setInterval(() => {
      for (const z of this.zones) this.keep(z);
    }, o.totalsEveryMs ?? TOTALS_EVERY_MS);
    this.timer.unref();
  }

  /**
   * Has the zone's offsets kept and filled, and their past days and UTC's summed into the fleet's totals, in the
   * background; a zone asked for again while queued is one task.
   */
  keep(zone: string): void {
    if (this.closed || this.queue.includes(zone)) return;
    this.zones.add(zone);
    this.queue.push(zone);
    this.running ??= this.run().finally(() => {
      this.running = null;
      this.wakeIdle();
    });
  }

  /**
   * Resolves when nothing is in flight (tests, the bench): every zone asked for is filled, or its latest try failed
   * and it waits out its retry (the fill goes on trying it). Answers the zones so waiting, [] when all are filled.
   */
  async idle(): Promise<string[]> {
    while (this.running !== null && !(this.pausing && this.queue.every((z) => this.failing.has(z))))
      await new Promise<void>((r) => this.idleWaiters.push(r));
    return this.queue.filter((z) => this.failing.has(z));
  }

  private wakeIdle(): void {
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.queue.length = 0;
    this.wake?.();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.closed && this.queue.length > 0) {
      const zone = this.queue[0]!;
      try {
        const offsets = await zoneOffsets(this.o.db, zone);
        for (const m of offsets) if ((await this.fill(m)) > 0) this.needsAnalyze = true;
        for (const m of [0, ...offsets]) if (await this.totals(m)) this.needsAnalyze = true;
        if (this.needsAnalyze) {
          await this.analyze();
          this.needsAnalyze = false;
        }
        this.queue.shift();
        this.failing.delete(zone);
      } catch (err) {
        // A database that cannot be reached, or a lock not had in time: the zone again later, behind the others, so
        // a zone that keeps failing never holds theirs.
        this.o.log?.('dashboard offset fill: retrying', { zone, error: err instanceof Error ? err.message : err });
        this.queue.push(this.queue.shift()!);
        this.failing.add(zone);
        this.pausing = true;
        this.wakeIdle();
        await this.pause(RETRY_MS);
        this.pausing = false;
      }
    }
  }

  /**
   * The planner's statistics of the tables a fill wrote, refreshed at once: a year's fill writes ~100,000 day rows,
   * and until autovacuum's analyze comes (a minute or more) a zone's 14-day Revenue page was planned for the tables
   * as they were before (a year of 100 routers, quiet: p95 434 ms before an ANALYZE, 41 ms after).
   */
  private async analyze(): Promise<void> {
    await this.o.db.exec('ANALYZE revenue_offsets, revenue_offset_days, revenue_totals_days, revenue_totals_months');
  }

  /** Offset m's days filled a slice at a time; how many slices it took (0: it was complete). */
  private async fill(m: number): Promise<number> {
    await this.o.db.transaction(async (tx) => {
      await tx.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
      await tx.query('SELECT revenue_offset_keep($1)', [m]);
    });
    const t = Date.now();
    let slices = 0;
    for (;;) {
      if (this.closed) return slices;
      const [row] = await this.o.db.query<{ from: string | null }>('SELECT revenue_offset_fill($1, $2)::text AS from', [
        m,
        this.o.sliceDays ?? FILL_SLICE_DAYS,
      ]);
      if (row?.from === '-infinity' || row?.from == null) break;
      slices += 1;
    }
    if (slices > 0) this.o.log?.('dashboard offset filled', { minutes: m, slices, ms: Date.now() - t });
    return slices;
  }

  /** Offset m's past days summed into the fleet's totals, a slice per transaction, up to today; whether it wrote. */
  private async totals(m: number): Promise<boolean> {
    const [was] = await this.o.db.query<{ to: string | null }>(
      'SELECT days_to::text AS to FROM revenue_totals_to WHERE minutes = $1',
      [m],
    );
    let last: string | null = was?.to ?? null;
    let wrote = false;
    for (;;) {
      if (this.closed) return wrote;
      const to = await this.o.db.transaction(async (tx) => {
        await tx.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
        const [row] = await tx.query<{ to: string | null }>('SELECT revenue_totals_close($1, $2)::text AS to', [
          m,
          TOTALS_SLICE_DAYS,
        ]);
        return row?.to ?? null;
      });
      if (to === null || to === last) return wrote;
      wrote = true;
      last = to;
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
