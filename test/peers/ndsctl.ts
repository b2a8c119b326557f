/**
 * ndsctl stand-in process: `ndsctl [--state <file>] <command> [args…]` (or env NDSCTL_STATE). Behaves like the
 * real binary where sluice can tell: the portal's output format and messages on stdout (src/sim/portal.ts),
 * exit 4 with no output while another call holds the lock (openNDS 9.10), exit 3 when the "portal" is not running
 * (state file missing or stopped), ~latency per call, optional pgrep junk on stderr.
 * Run through the `ndsctl` shell wrapper next to this file.
 */
import { existsSync } from 'node:fs';
import { appendLog, lockPathFor, modelOf, readStateFile, writeStateFile, type StandinState } from './ndsctl-state.ts';
import { tryLock, unlock } from './ndsctl-lock.ts';
import { burnCpu, openNdsCallCostMs } from './ndsctl-cost.ts';

const PGREP_JUNK =
  'pgrep: pattern that searches for process name longer than 15 characters will result in zero matches\n' +
  "Try `pgrep -f' option to match against the complete command line.\n";

async function main(argv: string[]): Promise<number> {
  let statePath = process.env['NDSCTL_STATE'];
  if (argv[0] === '--state') {
    statePath = argv[1];
    argv = argv.slice(2);
  }
  const started = Date.now();
  if (statePath === undefined || statePath === '') {
    process.stderr.write('ndsctl stand-in: no state file (--state <file> or NDSCTL_STATE)\n');
    return 3;
  }
  const lock = lockPathFor(statePath);
  let locked: boolean;
  try {
    locked = tryLock(lock);
  } catch {
    return notRunning();
  }
  const stateLog = (): string | undefined => {
    try {
      return readStateFile(statePath).standin.logFile;
    } catch {
      return undefined;
    }
  };
  if (!locked) {
    // openNDS 9.10 prints nothing when busy (10.x prints "ndsctl thread is busy, please try later.").
    appendLog(stateLog(), `${started} ${process.pid} busy-lock ${argv.join(' ')}`);
    return 4;
  }
  const release = (): void => unlock(lock);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => {
      release();
      process.exit(128 + (signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 1));
    });
  }
  try {
    if (!existsSync(statePath)) return notRunning();
    const state: StandinState = readStateFile(statePath);
    const knobs = state.standin;
    if ((knobs.busyCalls ?? 0) > 0) {
      knobs.busyCalls = (knobs.busyCalls ?? 0) - 1;
      writeStateFile(statePath, state);
      appendLog(knobs.logFile, `${started} ${process.pid} busy-knob ${argv.join(' ')}`);
      return 4;
    }
    const latency = Number(process.env['NDSCTL_LATENCY_MS'] ?? knobs.latencyMs ?? 0);
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    if (knobs.stderrJunk === true) process.stderr.write(PGREP_JUNK);
    const model = modelOf(state);
    // openNDS's real cost per call, per listed client (ndsctl-cost.ts): knob realCost or NDSCTL_REAL_COST=1.
    if (process.env['NDSCTL_REAL_COST'] === '1' || knobs.realCost === true)
      burnCpu(openNdsCallCostMs(argv, model.clients().length));
    const result = model.execute(argv);
    if (
      ['auth', 'deauth', 'stop'].includes(argv[0] ?? '') ||
      (argv[0] === '-s' && ['auth', 'deauth', 'stop'].includes(argv[2] ?? ''))
    ) {
      writeStateFile(statePath, { portal: model.toJSON(), standin: knobs });
    }
    appendLog(
      knobs.logFile,
      `${started} ${process.pid} ${result.code === 3 ? 'down' : 'ok'} rc=${result.code} ${argv.join(' ')}`,
    );
    if (result.stderr !== '') process.stderr.write(result.stderr);
    // Keep the lock until stdout is flushed, like ndsctl holds it until it has printed the reply.
    await new Promise<void>((resolve) => {
      if (result.stdout === '') resolve();
      else process.stdout.write(result.stdout, () => resolve());
    });
    return result.code;
  } finally {
    release();
  }
}

function notRunning(): number {
  process.stderr.write('ndsctl: opennds probably not started (Error: No such file or directory)\n');
  return 3;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ndsctl stand-in: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
