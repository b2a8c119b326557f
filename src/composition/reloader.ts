/**
 * The config reloader wired to the parts (SIGHUP, `ubus call sluice reload`): what a reload applies reaches the payment
 * methods, the plans, the session limits, the log level, the upstream sinks, the LAN endpoint (what it serves, where it
 * listens) and the portal's trusted MACs (the IPv6 gate's); what only a restart applies is noted by config/reloader.ts.
 */
import { ConfigReloader, type Config, type ConfigProblem } from '../config/index.ts';
import type { Logger } from '../log.ts';
import type { Parts } from './parts.ts';

export interface ReloaderOptions {
  configPath: string;
  /** Overrides `main.ubus_socket`, on every reload too. */
  ubusSocket?: string;
  /** A reload found `main.enabled` 0. */
  onDisabled?: () => void;
}

export function configReloader(
  options: ReloaderOptions,
  log: Logger,
  started: { config: Config; problems: readonly ConfigProblem[] },
  { upstream, sessions, payments, pricing, valve }: Parts,
  lan: {
    /** Once a reload is in force: what follows the config (the LAN endpoint starts, stops or serves anew). */
    follow: (config: Config) => Promise<void>;
    /** http.listen changed: the LAN endpoint moves (LanEndpointKeeper.move). */
    moveListen: (next: Config['http']) => Promise<void>;
  },
): ConfigReloader {
  return new ConfigReloader({
    path: options.configPath,
    overrides: options,
    sections: payments.sections,
    log,
    started: started.config,
    problems: started.problems,
    built: () => payments.built(),
    apply: async (next, running) => {
      // Methods switched on open and sell, those switched off stop selling (their sessions run on); the settings of
      // those that stay (facilitator, network, addresses, grace) apply now.
      await payments.switchTo(next, log);
      payments.reconfigure(next, running);
      pricing.setPlans(next.pricing);
      sessions.configure({ limits: next.limits, checkpointIntervalMs: next.main.checkpointIntervalMs });
      log.level = next.main.logLevel;
      return upstream.reload(next);
    },
    moveListen: lan.moveListen,
    listeners: (config) => payments.listenersAt(config),
    // A method's holds (a plan's step size…) and openNDS's trustedmac may have changed: re-read now, not at next use.
    applied: async (config) => {
      await payments.recheck();
      await Promise.all([lan.follow(config), valve.rereadTrusted()]);
    },
    ...(options.onDisabled && { onDisabled: options.onDisabled }),
  });
}
