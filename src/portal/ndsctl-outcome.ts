/**
 * What the end of one ndsctl call means (runner.ts): its exit code, signal or kill mapped to the result or to the error
 * whose code says what happened (docs/errors.md). Pure: the runner waits on the call, this reads how it ended.
 */
import { SluiceError, type ErrorCode } from '../errors.ts';
import { NDSCTL_EXIT, type KillReason } from './command.ts';

export interface NdsctlResult {
  stdout: string;
  /** Tail of stderr, for diagnostics only. */
  stderr: string;
  /** 1 unless "busy" answers were retried. */
  attempts: number;
  /**
   * The portal's own reply on its control socket (socket-transport.ts: exit 0 of a yes/no command is its `Yes`, word
   * for word), not an ndsctl command's exit code, which a wrapper in between may give for anything.
   */
  socket: boolean;
}

/** How one attempt ended: the exit (or the portal's reply on its socket) and what it wrote. */
export interface RawOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  socket?: boolean;
}

/** An attempt's end as the caller hears it: the result of a yes, or the error whose code says what went wrong. */
export function mapOutcome(args: readonly string[], o: RawOutcome, attempts: number): NdsctlResult {
  if (o.code === NDSCTL_EXIT.ok) return { stdout: o.stdout, stderr: o.stderr, attempts, socket: o.socket === true };
  const what = `ndsctl ${args.join(' ')}`.slice(0, 200);
  const said = firstLine(o.stdout) || firstLine(o.stderr);
  const details = {
    args: [...args],
    exitCode: o.code,
    signal: o.signal,
    stdout: o.stdout.slice(0, 200),
    stderr: o.stderr.slice(-500),
  };
  if (o.signal !== null) return fail('ERR_NDSCTL_FAILED', `${what}: killed by ${o.signal}`);
  switch (o.code) {
    case NDSCTL_EXIT.no:
      return fail('ERR_NDSCTL_REJECTED', `${what}: ${said || 'refused (exit 1)'}`);
    case NDSCTL_EXIT.abnormalReply:
      return fail('ERR_NDSCTL_FAILED', `${what}: abnormal reply from the portal (exit 2)${said ? `: ${said}` : ''}`);
    case NDSCTL_EXIT.cannotConnect:
      if (REPLY_LOST.test(o.stderr))
        throw new PortalReplyLost(
          `${what}: the portal dropped the connection before answering (exit 3): ${said}`,
          details,
        );
      return fail('ERR_PORTAL_DOWN', `${what}: cannot reach the portal (exit 3)${said ? `: ${said}` : ''}`);
    case 126:
    case 127:
      // Shell conventions, when the command is a wrapper script whose ndsctl is missing or not executable.
      return fail(
        'ERR_NDSCTL_MISSING',
        `${what}: command not found or not executable (exit ${o.code})${said ? `: ${said}` : ''}`,
      );
    default:
      return fail('ERR_NDSCTL_FAILED', `${what}: exit ${o.code}${said ? `: ${said}` : ''}`);
  }
  function fail(code: ErrorCode, message: string): never {
    throw new SluiceError(code, message, { details });
  }
}

/**
 * How ndsctl says its read of the answer failed once the request was sent: openNDS's ndsctl "ndsctl: Error reading
 * socket: …" (src/ndsctl.c ndsctl_do), the socket transport's "ndsctl: error reading <path>: …" (socket-transport.ts).
 * A connection that never opened says "cannot connect" or "probably not yet started" instead.
 */
const REPLY_LOST = /\berror reading\b/i;

/**
 * Exit 3 after the request went out: the portal dropped the connection before its answer (a portal dying or
 * restarting in the call). ERR_PORTAL_DOWN as any exit 3, but the portal may have done what it was asked: the outcome
 * of a yes/no command is unknown (an auth's is looked up: valve-open.ts).
 */
export class PortalReplyLost extends SluiceError {
  constructor(message: string, details: Record<string, unknown>) {
    super('ERR_PORTAL_DOWN', message, { details });
    this.name = 'PortalReplyLost';
  }
}

function firstLine(text: string): string {
  return (text.split('\n').find((line) => line.trim() !== '') ?? '').trim().slice(0, 200);
}

/** A call killed by the runner: for its deadline, its output's size, or the runner's end. */
export function killedError(why: KillReason, args: readonly string[], timeoutMs: number): SluiceError {
  const what = `ndsctl ${args.join(' ')}`.slice(0, 200);
  if (why === 'timeout')
    return new SluiceError('ERR_NDSCTL_TIMEOUT', `${what}: no answer within ${timeoutMs} ms, killed`, {
      details: { args: [...args], timeoutMs },
    });
  if (why === 'output')
    return new SluiceError('ERR_NDSCTL_FAILED', `${what}: output exceeds the size cap, killed`, {
      details: { args: [...args] },
    });
  return closedError();
}

/** ndsctl could not be started: missing (ERR_NDSCTL_MISSING) or another failure. */
export function spawnError(file: string, err: unknown): SluiceError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR') {
    return new SluiceError('ERR_NDSCTL_MISSING', `cannot run ${file}: ${code}`, {
      cause: err,
      details: { file, errno: code },
    });
  }
  return new SluiceError(
    'ERR_NDSCTL_FAILED',
    `cannot run ${file}: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

export function closedError(): SluiceError {
  return new SluiceError('ERR_VALVE_CLOSED', 'the ndsctl runner is shut down');
}
