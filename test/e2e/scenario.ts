/**
 * Shared pieces of the e2e scenario files: prerequisites with skip reasons, a repeating client prober, figures.
 */
import { test } from 'uvu';
import { labUnavailableReason, sleep } from './lab.ts';
import type { Client, FetchResult, Lab } from './lab.ts';
import { daemonUnavailableReason } from './sluice.ts';

export interface Prerequisites {
  /** why no lab can run here (then nothing runs) */
  lab: string | null;
  /** why sluice's daemon cannot be driven (then only the openNDS-only parts run) */
  daemon: string | null;
}

export function prerequisites(): Prerequisites {
  const lab = labUnavailableReason();
  return { lab, daemon: lab ?? daemonUnavailableReason() };
}

/**
 * Registers a scenario, or a visible skip: `SKIP <name>: <reason>` is printed even when the run is green.
 * SLUICE_E2E_ONLY="1,4" runs only the scenarios whose name starts with one of those words (setup steps always run).
 */
export function scenario(name: string, skipReason: string | null, fn: () => Promise<void>): void {
  const only = (process.env.SLUICE_E2E_ONLY ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const numbered = /^\d/.test(name);
  if (!skipReason && only.length && numbered && !only.some((o) => name.startsWith(`${o} `))) {
    skipReason = `not selected (SLUICE_E2E_ONLY=${only.join(',')})`;
  }
  if (skipReason) {
    console.log(`SKIP ${name}: ${skipReason}`);
    test.skip(name, () => {});
    return;
  }
  test(name, async () => { midLine = true; await fn(); });
}

/** uvu prints a test's progress mark without a newline: a figure must not be glued to it. */
let midLine = true;

/** A figure line: shown by test/run.mjs even for a passing file (it must start the line). */
export function figure(text: string): void {
  console.log(`${midLine ? '\n' : ''}[e2e] ${text}`);
  midLine = false;
}

/** Fetches `path` from a client over and over (one request at a time) until stopped; keeps every result. */
export class Prober {
  readonly results: Array<FetchResult & { startedAt: number }> = [];
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly lab: Lab,
    readonly client: Client,
    private readonly path = '/ping',
    private readonly gapMs = 200,
    private readonly maxTimeS = 1,
  ) {}

  start(): this {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const startedAt = Date.now();
        const r = await this.lab.fetch(this.client, this.path, this.maxTimeS);
        this.results.push({ ...r, startedAt });
        if (this.running) await sleep(this.gapMs);
      }
    })();
    return this;
  }

  async stop(): Promise<Array<FetchResult & { startedAt: number }>> {
    this.running = false;
    await this.loop;
    return this.results;
  }

  /** the upstream answered (200 from the upstream, not the portal's 307) */
  static passed(r: FetchResult): boolean {
    return r.exit === 0 && r.http === 200;
  }
}

/** Dumps what helps to understand a failure (the daemon's and openNDS's log tails). */
export function dumpLogs(lab: Lab | null, daemonLog: (() => string) | null): void {
  if (daemonLog) console.log(`--- sluice daemon.log (tail) ---\n${daemonLog()}`);
  if (lab) console.log(`--- lab.log ---\n${lab.logTail('lab.log', 20)}`);
}
