/**
 * One nft run for the changes that one gate event makes to sluice's tables. The kernel quota (kernel-quota.ts), the
 * counters (kernel-counting.ts) and the IPv6 gate (ipv6-gate.ts) each write their own batch, serialised each in its
 * own queue; an opening sets a client's quota and counters, a close's end releases its stop, removes its quota and
 * its counters. Each nft run costs the router a process (≈ 2–3 ms of the daemon's CPU to spawn it from Node and
 * 2–4 ms of nft's own on a small router, whatever the batch holds: docs/performance.md), so the batches handed to
 * one NftBatcher in the same turn of the event loop go to nft as one `nft -f -`: one kernel transaction (every table
 * changes together, or none does).
 *
 * A merged batch that fails is run again as its parts, each alone in the order they came: one module's lines that
 * nft refuses (its table deleted behind sluice's back) fail that module alone, which rebuilds its own table as
 * before, and the others' changes are made. Each caller gets its own batch's outcome, as from its own run.
 *
 * One run at a time: the batches handed in while a run is in flight go together in the next one (the thread's shell
 * runs one command at a time anyway), so openings that arrive together share a run instead of queueing one behind
 * another's; the run begins once the I/O of the next poll has been read too (#schedule). A merged run adds each set's
 * elements in one command (nft-coalesce.ts).
 *
 * Anything but `-f -` (a listing, a delete) runs at once, alone.
 *
 * HeldRuns: NftRuns that keep the batches they are handed and answer each at once, as made: a caller that makes
 * several modules' changes one transaction (sluice's own gate: gate/own-valve.ts) runs what they kept as one batch,
 * and squares each module with the kernel itself when nft refuses it.
 */
import { afterNextPoll } from '../time.ts';
import { coalesceElements } from './nft-coalesce.ts';
import type { NftRun } from './nft-run.ts';

interface Pending {
  script: string;
  resolve: (stdout: string) => void;
  reject: (err: unknown) => void;
}

export interface NftBatchStats {
  /** nft runs made for batches (merged, alone, and each part of a merged one that failed). */
  runs: number;
  /** Batches handed in. */
  batches: number;
  /** Merged runs that failed and were run again as their parts. */
  split: number;
}

export class NftBatcher {
  readonly #run: NftRun;
  #pending: Pending[] = [];
  #scheduled = false;
  #inFlight = false;
  readonly #stats: NftBatchStats = { runs: 0, batches: 0, split: 0 };

  constructor(run: NftRun) {
    this.#run = run;
  }

  /** The NftRun each module is given: `-f -` batches of the same turn merged, anything else alone. */
  readonly run: NftRun = (args, stdin) => {
    if (args.length !== 2 || args[0] !== '-f' || args[1] !== '-') return this.#run(args, stdin);
    this.#stats.batches++;
    return new Promise<string>((resolve, reject) => {
      this.#pending.push({ script: stdin.endsWith('\n') || stdin === '' ? stdin : `${stdin}\n`, resolve, reject });
      this.#schedule();
    });
  };

  #schedule(): void {
    if (this.#scheduled || this.#inFlight) return;
    this.#scheduled = true;
    // After this turn's promise jobs (each module's queued change reaches here within them) and the moment's I/O:
    // openings of the same moment share a run.
    afterNextPoll(() => {
      this.#scheduled = false;
      this.#inFlight = true;
      void this.#flush().finally(() => {
        this.#inFlight = false;
        if (this.#pending.length > 0) this.#schedule();
      });
    });
  }

  stats(): NftBatchStats {
    return { ...this.#stats };
  }

  async #flush(): Promise<void> {
    const parts = this.#pending;
    this.#pending = [];
    if (parts.length === 1) {
      await this.#alone(parts[0]!);
      return;
    }
    try {
      this.#stats.runs++;
      const stdout = await this.#run(['-f', '-'], coalesceElements(parts.map((p) => p.script).join('')));
      for (const p of parts) p.resolve(stdout);
      return;
    } catch {
      // Nothing of it was made (one transaction): each part alone, so one module's failure is its own.
      this.#stats.split++;
    }
    for (const p of parts) await this.#alone(p);
  }

  async #alone(p: Pending): Promise<void> {
    this.#stats.runs++;
    try {
      p.resolve(await this.#run(['-f', '-'], p.script));
    } catch (err) {
      p.reject(err);
    }
  }
}

/** The batches one module handed a HeldRuns. */
export interface HeldPart {
  name: string;
  script: string;
}

/**
 * NftRuns that keep every `-f -` batch (answered at once, as made) and pass anything else on to `run`, one per name
 * (a module): `script()` is all of them in the order they came, `parts()` each module's, for a caller that runs them
 * alone after the whole was refused.
 */
export class HeldRuns {
  readonly #run: NftRun;
  readonly #kept: HeldPart[] = [];

  constructor(run: NftRun) {
    this.#run = run;
  }

  for(name: string): NftRun {
    return async (args, stdin) => {
      if (args.length !== 2 || args[0] !== '-f' || args[1] !== '-') return this.#run(args, stdin);
      if (stdin !== '') this.#kept.push({ name, script: stdin.endsWith('\n') ? stdin : `${stdin}\n` });
      return '';
    };
  }

  script(): string {
    return this.#kept.map((p) => p.script).join('');
  }

  /** Each module's batches together, modules in the order they first came. */
  parts(): HeldPart[] {
    const byName = new Map<string, string>();
    for (const p of this.#kept) byName.set(p.name, (byName.get(p.name) ?? '') + p.script);
    return [...byName].map(([name, script]) => ({ name, script }));
  }
}
