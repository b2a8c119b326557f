/**
 * The config the daemon runs, and its reloads (SIGHUP, `ubus call sluice reload`): the file is read again, its
 * problems logged, what only a restart applies noted (reload-diff.ts) while `stats` keeps showing the running values,
 * and the rest handed to the parts that take it. A file that cannot be read at all is reported and the running config
 * kept; `main.enabled` 0 stops the daemon. One reload at a time: a second request while one runs shares it.
 */
import { toSluiceError } from '../errors.ts';
import type { Log } from '../log.ts';
import type { OwnSection } from './load.ts';
import { loadConfigPartial } from './load-file.ts';
import { formatProblem, type ConfigProblem } from './reader.ts';
import { secretsPathFor } from './secrets.ts';
import { listenMoved, reloadDiff, runningConfig, withOverrides, type RunningParts } from './reload-diff.ts';
import type { Config } from './types.ts';

/** The `reload` reply (docs/ubus-api.md). A type, not an interface: it is sent as a blobmsg table. */
export type ReloadReply = {
  plans: number;
  restart_required: string[];
  /**
   * Listeners this reload moved (`http.listen`, the option of a payment plugin's own listener; one switched on or off
   * too): the init script hands procd their new firewall rules.
   */
  moved?: string[];
  stopping?: true;
  problems: Array<{ path: string; reason: string; effect: string | null }>;
};

export interface ConfigReloaderOptions {
  path: string;
  /** The command line's overrides (withOverrides). */
  overrides: { ubusSocket?: string };
  /** The sections the payment plugins bring (read on every reload as at the start). */
  sections?: readonly OwnSection[];
  log: Log;
  /** The config the daemon was started with, and its problems. */
  started: Config;
  problems: readonly ConfigProblem[];
  /** Which payment methods' switches have a method selling now (PaymentPlugins.built). */
  built: () => Omit<RunningParts, 'main' | 'http'>;
  /**
   * Applies what a reload applies; `next` has the restart-only values as running. Returns what the parts could not
   * apply (a listener's port in use): listed with the file's problems, so a reply never says all is well while a part
   * is off.
   */
  apply: (next: Config, running: RunningParts) => Promise<readonly ConfigProblem[] | void>;
  /**
   * Moves the LAN endpoint to `next`'s http.listen (a reload that changed it), before the parts follow the new
   * config; throws (ERR_HTTP_LISTEN) when it cannot, and the endpoint stays where it was. Absent: nothing listens.
   */
  moveListen?: (next: Config['http']) => Promise<void>;
  /** Once the new config is in place (the methods' holds re-evaluated), with the config in force now. */
  applied?: (config: Config) => Promise<void>;
  /**
   * Where the payment plugins' own listeners are for `config`, by the option that places each (`<section>.listen` →
   * `host:port`, '' or absent: nowhere; PaymentPlugins.listenersAt): read once a reload is applied (a plugin it opened
   * brings its listener then), and a reload that changes one lists its option in `moved`.
   */
  listeners?: (config: Config) => Readonly<Record<string, string>>;
  /** `main.enabled` 0: the owner stops the daemon. */
  onDisabled?: () => void;
}

/** Every problem of a config the daemon runs on anyway, loudly: one error line each, saying what was done. */
export function logProblems(log: Log, problems: readonly ConfigProblem[], when: string): void {
  for (const p of problems) log.error('config problem ignored', { when, problem: formatProblem(p), effect: p.effect });
}

/** Secrets still in the main file (loadConfigPartial's exposedSecrets): one warning each, on every load. */
export function logExposedSecrets(log: Log, exposed: readonly string[] | undefined, path: string, when: string): void {
  for (const option of exposed ?? []) {
    log.warn('secret readable by every user who may read the settings: move it to the secrets file', {
      when,
      option,
      file: path,
      to: secretsPathFor(path),
    });
  }
}

function listenOf(http: Config['http']): string {
  return http.host === '' ? 'nothing (off)' : `${http.host}:${http.port}`;
}

export class ConfigReloader {
  /** What runs now: the last good reload, restart-only options as started. */
  config: Config;
  problems: readonly ConfigProblem[];
  /** Options changed in the file that only a restart applies. */
  restartRequired: string[] = [];
  private reloading: Promise<ReloadReply> | undefined;
  /** The LAN endpoint's section as it runs: as started, its address as the last move put it. */
  private http: Config['http'];
  /** Where the plugins' own listeners are for the config in force, by option. */
  private listenersAt: Readonly<Record<string, string>>;

  constructor(private readonly options: ConfigReloaderOptions) {
    this.config = options.started;
    this.problems = options.problems;
    this.http = options.started.http;
    this.listenersAt = options.listeners?.(options.started) ?? {};
  }

  reload(): Promise<ReloadReply> {
    this.reloading ??= this.doReload().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async doReload(): Promise<ReloadReply> {
    const { log } = this.options;
    let next: Config;
    let problems: ConfigProblem[];
    let exposed: string[] | undefined;
    try {
      ({
        config: next,
        problems,
        exposedSecrets: exposed,
      } = await loadConfigPartial(this.options.path, {
        ...(this.options.sections && { sections: this.options.sections }),
      }));
      next = withOverrides(next, this.options.overrides);
    } catch (err) {
      // Unreadable or not UCI at all: nothing to take a valid part from.
      const e = toSluiceError(err, 'ERR_CONFIG_INVALID');
      log.error('reload rejected, keeping the running config', { code: e.code, reason: e.message });
      throw e;
    }
    logProblems(log, problems, 'reload');
    logExposedSecrets(log, exposed, this.options.path, 'reload');
    this.problems = problems;
    const problemList = (): ReloadReply['problems'] =>
      this.problems.map((p) => ({ path: p.path, reason: p.reason, effect: p.effect ?? null }));
    if (!next.main.enabled) {
      log.warn('main.enabled is 0: stopping');
      if (this.options.onDisabled) setImmediate(this.options.onDisabled);
      return { plans: next.pricing.length, restart_required: [], stopping: true, problems: problemList() };
    }
    const moved = await this.moveListen(next.http);
    const running: RunningParts = {
      main: this.options.started.main,
      http: this.http,
      ...this.options.built(),
    };
    this.restartRequired = reloadDiff(running, next);
    const unapplied = [...((await this.options.apply(next, running)) ?? []), ...(moved.problem ? [moved.problem] : [])];
    // Already logged by the part that failed, with its own words.
    if (unapplied.length > 0) this.problems = [...problems, ...unapplied];
    this.config = runningConfig(next, running);
    await this.options.applied?.(this.config);
    // The plugins' own listeners follow the reload (their host moves them): the init script hands procd their rules.
    const listeners = [...(moved.done ? ['http.listen'] : []), ...this.listenersMoved(next)];
    log.info('config reloaded', {
      plans: next.pricing.length,
      problems: this.problems.length || undefined,
      restart_required: this.restartRequired.join(',') || undefined,
      moved: listeners.join(',') || undefined,
    });
    return {
      plans: next.pricing.length,
      restart_required: [...this.restartRequired],
      ...(listeners.length > 0 && { moved: listeners }),
      problems: problemList(),
    };
  }

  /** The options of the plugins' own listeners that `next` puts elsewhere than the config before it did. */
  private listenersMoved(next: Config): string[] {
    const at = this.options.listeners?.(next) ?? {};
    const was = this.listenersAt;
    this.listenersAt = at;
    return [...new Set([...Object.keys(was), ...Object.keys(at)])].filter((o) => (was[o] ?? '') !== (at[o] ?? ''));
  }

  /**
   * http.listen changed: the endpoint moved to the new address and the running section follows it; a move that fails
   * leaves both where they were and is the reload's problem (ERR_HTTP_LISTEN, the reason in its words).
   */
  private async moveListen(next: Config['http']): Promise<{ done: boolean; problem?: ConfigProblem }> {
    if (!listenMoved(this.http, next)) return { done: false };
    try {
      await this.options.moveListen?.(next);
    } catch (err) {
      const e = toSluiceError(err, 'ERR_HTTP_LISTEN');
      this.options.log.error('http.listen not moved: the LAN endpoint stays where it was', {
        code: e.code,
        reason: e.message,
      });
      const reason = `${e.code}: ${e.message}; the LAN endpoint stays on ${listenOf(this.http)}`;
      return { done: false, problem: { path: 'http.listen', section: 'http', option: 'listen', reason } };
    }
    this.http = { ...this.http, host: next.host, port: next.port };
    return { done: true };
  }
}
