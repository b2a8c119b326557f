import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PortalModel, type PortalConfig, type PortalModelJson } from '../../src/sim/portal.ts';
import { lockBlocking, unlock } from './ndsctl-lock.ts';

/** Executable ndsctl stand-in; argv for sluice's `main.ndsctl`: [NDSCTL_STANDIN, '--state', <file>]. */
export const NDSCTL_STANDIN = fileURLToPath(new URL('./ndsctl', import.meta.url));

/** Where the `ndsctl` wrapper finds the stand-in as one plain .mjs (see useStandinBundle). */
const BUNDLE_ENV = 'SLUICE_NDSCTL_BUNDLE';

/**
 * Builds the stand-in into one plain .mjs once per test process and tells the `ndsctl` wrapper through the environment
 * (the daemon, its usage worker and any spawned stand-in inherit it). Loading ndsctl.ts through tsx costs ~0.7 s of CPU
 * per call; the bundle ~0.1 s. The same code on the same command path: sluice still runs the wrapper script, which
 * execs node on the bundle. Named by its content, so files running side by side share one; written by rename, so a
 * reader never sees half of it. If esbuild fails the variable stays empty and the wrapper loads the .ts through tsx.
 */
export function useStandinBundle(): void {
  if (process.env[BUNDLE_ENV] !== undefined) return;
  process.env[BUNDLE_ENV] = '';
  const source = fileURLToPath(new URL('./ndsctl.ts', import.meta.url));
  const esbuild = fileURLToPath(new URL('../../node_modules/.bin/esbuild', import.meta.url));
  const r = spawnSync(esbuild, [source, '--bundle', '--platform=node', '--format=esm', '--log-level=error'], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  if (r.status !== 0 || !r.stdout) return;
  const path = join(
    tmpdir(),
    `sluice-ndsctl-standin-${createHash('sha256').update(r.stdout).digest('hex').slice(0, 16)}.mjs`,
  );
  if (!existsSync(path)) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, r.stdout);
    renameSync(tmp, path);
  }
  process.env[BUNDLE_ENV] = path;
}

/** Test knobs the stand-in reads from the state file next to the portal's client table. */
export interface StandinKnobs {
  /** Held while locked, like a real ~0.1 s call. Env NDSCTL_LATENCY_MS overrides. */
  latencyMs?: number;
  /** Each call burns the CPU a real openNDS 9.10 would (ndsctl-cost.ts). Env NDSCTL_REAL_COST=1 also turns it on. */
  realCost?: boolean;
  /** The next N calls exit 4 (busy) without doing anything. */
  busyCalls?: number;
  /** Print Debian-pgrep-style warnings on stderr on every call. */
  stderrJunk?: boolean;
  /** Fixed clock (unix seconds) for reproducible output; absent = real time. */
  now?: number;
  /**
   * Append one line per invocation: `<ms> <pid> <outcome> <argv…>` (outcome: ok rc=N | busy-lock | busy-knob | down).
   */
  logFile?: string;
}

export interface StandinState {
  portal: PortalModelJson;
  standin: StandinKnobs;
}

export function lockPathFor(statePath: string): string {
  return `${statePath}.lock`;
}

export function readStateFile(path: string): StandinState {
  return JSON.parse(readFileSync(path, 'utf8')) as StandinState;
}

/** Atomic replace, so a concurrent reader never sees half a file. */
export function writeStateFile(path: string, state: StandinState): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state));
  renameSync(tmp, path);
}

export function modelOf(state: StandinState): PortalModel {
  const fixed = state.standin.now;
  return PortalModel.fromJSON(state.portal, fixed === undefined ? {} : { clock: { now: () => fixed * 1000 } });
}

/** A portal state file in a temp dir, with helpers that edit it under the stand-in's lock. */
export class PortalStateFile {
  readonly dir: string;
  readonly path: string;
  readonly #ownsDir: boolean;

  private constructor(dir: string, ownsDir: boolean) {
    this.dir = dir;
    this.path = join(dir, 'ndsctl-state.json');
    this.#ownsDir = ownsDir;
  }

  static create(
    opts: { dir?: string; config?: Partial<PortalConfig>; knobs?: StandinKnobs; seed?: number } = {},
  ): PortalStateFile {
    useStandinBundle();
    const file = new PortalStateFile(opts.dir ?? mkdtempSync(join(tmpdir(), 'sluice-ndsctl-')), opts.dir === undefined);
    const model = new PortalModel(opts.config ?? {}, opts.seed === undefined ? {} : { seed: opts.seed });
    writeStateFile(file.path, { portal: model.toJSON(), standin: { ...opts.knobs } });
    return file;
  }

  /** argv that runs the stand-in on this state: what `main.ndsctl` would hold. */
  get command(): string[] {
    return [NDSCTL_STANDIN, '--state', this.path];
  }

  get logFile(): string {
    return join(this.dir, 'ndsctl.log');
  }

  read(): { model: PortalModel; knobs: StandinKnobs } {
    const state = readStateFile(this.path);
    return { model: modelOf(state), knobs: state.standin };
  }

  /** Runs `fn` on the model and knobs under the lock and writes the result back. */
  update<T>(fn: (model: PortalModel, knobs: StandinKnobs) => T): T {
    const lock = lockPathFor(this.path);
    lockBlocking(lock);
    try {
      const state = readStateFile(this.path);
      const model = modelOf(state);
      const knobs = { ...state.standin };
      const result = fn(model, knobs);
      writeStateFile(this.path, { portal: model.toJSON(), standin: knobs });
      return result;
    } finally {
      unlock(lock);
    }
  }

  addClient(mac: string, ip: string): void {
    this.update((m) => m.addClient(mac, ip));
  }

  addTraffic(mac: string, downloadBytes: number, uploadBytes: number): boolean {
    return this.update((m) => m.addTraffic(mac, downloadBytes, uploadBytes));
  }

  /** Portal restart (openNDS 9: every client gone). */
  restart(): void {
    this.update((m) => m.restart());
  }

  setDown(down: boolean): void {
    this.update((m) => (down ? m.stop() : m.start()));
  }

  setKnobs(knobs: Partial<StandinKnobs>): void {
    this.update((_m, k) => Object.assign(k, knobs));
  }

  /** Log the stand-in's invocations to `logFile` from now on. */
  enableLog(): void {
    this.setKnobs({ logFile: this.logFile });
  }

  logLines(): string[] {
    return existsSync(this.logFile)
      ? readFileSync(this.logFile, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : [];
  }

  removeStateFile(): void {
    unlinkSync(this.path);
  }

  cleanup(): void {
    if (this.#ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

export function appendLog(logFile: string | undefined, line: string): void {
  if (logFile === undefined || logFile === '') return;
  try {
    appendFileSync(logFile, `${line}\n`);
  } catch {
    // Logging is a test aid; never change the stand-in's answer because of it.
  }
}
