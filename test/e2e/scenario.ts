/**
 * Shared pieces of the e2e scenario files: prerequisites with skip reasons, the file's lab, a repeating client
 * prober, figures.
 */
import { test } from 'uvu';
import { skipTest } from '../helpers/skip.ts';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { Lab, labUnavailableReason, OPENNDS10, opennds10UnavailableReason, sleep } from './lab.ts';
import type { Client, FetchResult } from './lab.ts';
import { daemonUnavailableReason, type Sluice } from './sluice.ts';

/**
 * The portal the lab runs: openNDS (Debian's package), nodogsplash when a scenario file for it
 * (nodogsplash-*.test.ts) set SLUICE_E2E_LAB_PORTAL and SLUICE_E2E_NODOGSPLASH names a local build, or none when
 * sluice is the gate (sluice-*.test.ts: `main.portal 'sluice'`, lab.sh --sluice).
 */
export const LAB_PORTAL: 'opennds' | 'nodogsplash' | 'sluice' =
  process.env['SLUICE_E2E_LAB_PORTAL'] === 'nodogsplash' || process.env['SLUICE_E2E_LAB_PORTAL'] === 'sluice'
    ? process.env['SLUICE_E2E_LAB_PORTAL']
    : 'opennds';

export interface Prerequisites {
  /** why no lab can run here (then nothing runs) */
  lab: string | null;
  /** why sluice's daemon cannot be driven (then only the openNDS-only parts run) */
  daemon: string | null;
}

export function prerequisites(): Prerequisites {
  const lab =
    labUnavailableReason() ??
    (LAB_PORTAL === 'nodogsplash' ? nodogsplashUnavailableReason() : null) ??
    (OPENNDS10 ? opennds10UnavailableReason() : null);
  return { lab, daemon: lab ?? daemonUnavailableReason() };
}

/**
 * Registers a scenario, or a visible skip: `SKIP <name>: <reason>` is printed even when the run is green.
 * SLUICE_E2E_ONLY="1,4" runs only the scenarios whose name starts with one of those words (setup steps always run).
 */
export function scenario(name: string, skipReason: string | null, fn: () => Promise<void>): void {
  const only = (process.env.SLUICE_E2E_ONLY ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const numbered = /^\d/.test(name);
  if (!skipReason && only.length && numbered && !only.some((o) => name.startsWith(`${o} `))) {
    skipReason = `not selected (SLUICE_E2E_ONLY=${only.join(',')})`;
  }
  if (skipReason) {
    console.log(`SKIP ${name}: ${skipReason}`);
    test.skip(name, () => {});
    return;
  }
  test(name, async () => {
    midLine = true;
    await fn();
  });
}

/** Why a nodogsplash lab cannot run (SLUICE_E2E_NODOGSPLASH unset or not a binary with ndsctl beside it), or null. */
function nodogsplashUnavailableReason(): string | null {
  const bin = process.env['SLUICE_E2E_NODOGSPLASH'];
  if (!bin)
    return (
      'SLUICE_E2E_NODOGSPLASH is not set (the path of a nodogsplash 5.0.2 binary built from its public source, ' +
      'ndsctl next to it)'
    );
  for (const f of [bin, join(dirname(bin), 'ndsctl')]) {
    try {
      accessSync(f, constants.X_OK);
    } catch {
      return `SLUICE_E2E_NODOGSPLASH: ${f} is not an executable`;
    }
  }
  return null;
}

/** The lab a scenario file runs on, the daemon it started, and whether a scenario failed (logs are dumped then). */
export class LabRun {
  lab: Lab | null = null;
  sluice: Sluice | null = null;
  /** c4, which never pays, fetching from bring-up on: its scenario checks it never got through */
  unpaid: Prober | null = null;
  failed = false;
  readonly L = (): Lab => {
    if (!this.lab) throw new Error('lab is not up');
    return this.lab;
  };
  readonly S = (): Sluice => {
    if (!this.sluice) throw new Error('sluice is not running');
    return this.sluice;
  };
  /** `scenario`, marking the run failed when it throws. */
  readonly scenario = (name: string, skipReason: string | null, fn: () => Promise<void>): void => {
    scenario(name, skipReason, async () => {
      try {
        await fn();
      } catch (err) {
        this.failed = true;
        throw err;
      }
    });
  };
}

/**
 * One lab for the whole file (uplink shaped to 8 Mbit/s), up before the first scenario with c4 probing, down after
 * the last; or, when no lab can run here, one visible skip.
 */
export function labRun(name: string, pre: Prerequisites): LabRun {
  const run = new LabRun();
  if (pre.lab) {
    // CI builds no nodogsplash and no openNDS 10.3.1: their labs' skip passes there; a Debian openNDS lab's fails.
    skipTest(test, `e2e ${name} scenarios`, pre.lab, { ciInstalls: LAB_PORTAL !== 'nodogsplash' && !OPENNDS10 });
    return run;
  }
  test.before(async () => {
    const lab = (run.lab = await Lab.up({
      rate: '8mbit',
      ...(LAB_PORTAL === 'nodogsplash' && { nodogsplash: process.env['SLUICE_E2E_NODOGSPLASH']! }),
      ...(LAB_PORTAL === 'sluice' && { sluice: true }),
    }));
    // The portal's own word for its version: which openNDS this file really ran against. openNDS writes it at start
    // (ndscids/ndsinfo on its tmpfs); `ndsctl status` would run a gateway check in its ndsctl thread beside the main
    // loop's first one, which makes openNDS 9.10 exit (docs/captive-portal.md "Portal restarts": seen in CI).
    const version = await lab.portalVersion();
    const portal = `${lab.portal} ${version}`;
    figure(`lab ${lab.id}: ${lab.dir} (uplink tbf 8mbit, portal ${portal}, checkinterval ${lab.checkinterval} s)`);
    // Up to 10 s per request: the portal's 307 comes from openNDS's web server, which on a loaded machine can take
    // longer than a couple of seconds to answer; a request cut short by curl would be neither passed nor redirected.
    run.unpaid = new Prober(lab, lab.client(4), '/ping', 800, 10).start();
  });
  test.after(async () => {
    await run.unpaid?.stop();
    if (run.failed) dumpLogs(run.lab, run.sluice ? () => run.S().logTail() : null);
    await run.sluice?.stop();
    await run.lab?.down();
  });
  return run;
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

/** Dumps what helps to understand a failure (the daemon's, the lab's and the portal's log tails). */
export function dumpLogs(lab: Lab | null, daemonLog: (() => string) | null): void {
  if (daemonLog) console.log(`--- sluice daemon.log (tail) ---\n${daemonLog()}`);
  if (lab) {
    const exits = lab.portalExits();
    console.log(
      `--- lab.log ---\n${lab.logTail('lab.log', 20)}\n--- opennds.log ---\n${lab.logTail('opennds.log', 40)}` +
        (exits.length ? `\n--- the portal's exits (opennds.log) ---\n${exits.join('\n')}` : ''),
    );
  }
}
