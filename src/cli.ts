/**
 * `sluice daemon`: its command line and the process around it (signals, the handlers that keep a bug from being
 * fatal, the exit code procd sees). The daemon itself knows nothing of the process it runs in.
 */
import { spawn } from 'node:child_process';
import { loadConfigPartial } from './config/index.ts';
import { Daemon } from './daemon.ts';
import { toSluiceError } from './errors.ts';
import { createLogger, type Log } from './log.ts';

const USAGE =
  'usage: sluice daemon [--config /etc/config/sluice] [--ubus-socket /var/run/ubus/ubus.sock] [--reset-state]\n';

export interface DaemonArgs {
  configPath: string;
  ubusSocket?: string;
  resetState: boolean;
}

/** The daemon's arguments, `help`, or the one argument it does not understand. */
export function parseDaemonArgs(argv: readonly string[]): DaemonArgs | 'help' | { unexpected: string } {
  const args: DaemonArgs = { configPath: '/etc/config/sluice', resetState: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    if ((arg === '--config' || arg === '-c') && value !== undefined) {
      args.configPath = value;
      i++;
    } else if ((arg === '--ubus-socket' || arg === '-s') && value !== undefined) {
      args.ubusSocket = value;
      i++;
    } else if (arg === '--reset-state') args.resetState = true;
    else if (arg === '-h' || arg === '--help') return 'help';
    else return { unexpected: arg };
  }
  return args;
}

/**
 * `sluice daemon [--config /etc/config/sluice] [--ubus-socket /var/run/ubus/ubus.sock] [--reset-state]`. `held`: the
 * SIGHUPs main.ts caught while this module loaded (a reload is owed once the daemon is up).
 */
export async function runDaemon(argv: string[], held?: { readonly count: number; release(): void }): Promise<number> {
  const parsed = parseDaemonArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if ('unexpected' in parsed) {
    process.stderr.write(`sluice daemon: unexpected argument ${JSON.stringify(parsed.unexpected)}\n`);
    return 2;
  }
  const { configPath, ubusSocket, resetState } = parsed;
  const log = createLogger();
  const pre = await loadConfigPartial(configPath).catch(() => undefined);
  const init = process.env.SLUICE_INIT;
  if (pre && !pre.config.main.enabled) {
    if (!init) {
      log.info('main.enabled is 0: not starting');
      return 0;
    }
    // Started by procd with enabled 0 (a respawn after the file changed, or a race with the init script): exiting
    // would be a crash to procd, respawned five times. The init script takes the instance away instead.
    log.info('main.enabled is 0: not starting; the init script takes the instance away', { init });
    return new Promise<number>((resolve) => {
      const keepAlive = setInterval(() => undefined, 1 << 30);
      const done = (): void => {
        clearInterval(keepAlive);
        resolve(0);
      };
      process.once('SIGTERM', done);
      process.once('SIGINT', done);
      handOffToInit(init, log, (ok) => {
        // procd's SIGTERM normally comes before the script ends. If procd kept the instance (the file says enabled
        // again), exit: the respawn starts a daemon on the new file.
        if (!ok) done();
        else setTimeout(done, 30_000).unref();
      });
    });
  }
  let daemon: Daemon | undefined;
  let stopOnDisabled = (): void => undefined;
  // Installed before start: procd (or an admin) may send SIGHUP while recovery runs, and Node's default for an
  // unhandled SIGHUP is to die. A reload asked for during start-up runs once the daemon is up.
  let reloadAfterStart = false;
  process.on('SIGHUP', () => {
    if (daemon) daemon.reload().catch(() => undefined);
    else reloadAfterStart = true;
  });
  if (held) {
    held.release();
    if (held.count > 0) reloadAfterStart = true;
  }
  try {
    daemon = await Daemon.start({
      configPath,
      ...(ubusSocket !== undefined && { ubusSocket }),
      ...(resetState && { resetState }),
      log,
      onDisabled: () => stopOnDisabled(),
    });
  } catch (err) {
    const e = toSluiceError(err);
    log.error('cannot start', { code: e.code, reason: e.message });
    // Exit non-zero even if something opened during the failed start (a ubus reconnect timer, a worker) would keep
    // the event loop alive: procd must see the failure to respawn or give up.
    setTimeout(() => process.exit(1), 200).unref();
    return 1;
  }
  const running = daemon;
  // The daemon never crashes on input; a bug that escapes a handler is logged, not fatal.
  process.on('uncaughtException', (err) => log.error('uncaught exception', { reason: err.stack ?? String(err) }));
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { reason: toSluiceError(err).message }));
  if (reloadAfterStart) running.reload().catch(() => undefined);
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info('stopping', { signal });
      running.stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    stopOnDisabled = init
      ? // Under the init script (SLUICE_INIT): it owns main.enabled. `start` registers the service without this
        // instance and procd sends SIGTERM (the clean stop below), keeping the service and its config.change trigger;
        // exiting here would be a crash to procd. Without the script (or if it fails), stop.
        () =>
          handOffToInit(init, log, (ok) => {
            if (!ok) stop('main.enabled 0');
          })
      : () => stop('main.enabled 0');
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** Runs `<init> start` apart from this process (procd signals the daemon's pid only); `done(true)` when it exited 0. */
function handOffToInit(init: string, log: Log, done: (ok: boolean) => void): void {
  const child = spawn(init, ['start'], { detached: true, stdio: 'ignore' });
  child.once('error', (err) => {
    log.error('main.enabled is 0 but the init script cannot be run: stopping', { init, reason: err.message });
    done(false);
  });
  child.once('exit', (code, signal) => {
    if (code !== 0) log.error('main.enabled is 0 but the init script failed: stopping', { init, code, signal });
    done(code === 0);
  });
  child.unref();
}
