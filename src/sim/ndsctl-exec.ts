/**
 * The ndsctl binary's side of a call (argument handling, the Yes/No → message + exit code mapping), following
 * openNDS 9.10 and nodogsplash 5.0.2 src/ndsctl.c. Locking (exit 4) and "portal not running" for a missing
 * socket are the stand-in process's business; a stopped model also answers 3 here.
 */
import type { PortalFlavour } from '../portal/index.ts';

/** An auth's arguments, as ndsctl's `auth` fields give them (the model's defaults for the missing ones). */
export interface AuthArgs {
  sessionMinutes?: number;
  uploadRate?: number;
  downloadRate?: number;
  uploadQuotaKiB?: number;
  downloadQuotaKiB?: number;
  custom?: string;
}

/** What an ndsctl call prints and exits with. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** What a call reads and does to the portal model (sim/portal.ts's PortalModel). */
export interface NdsctlTarget {
  readonly flavour: PortalFlavour;
  readonly running: boolean;
  renderJson(flavour: PortalFlavour, target?: string): string;
  renderStatus(): string;
  stop(): void;
  auth(target: string, args?: AuthArgs): boolean;
  deauth(target: string): boolean;
}

/** ifyes / ifno formats of ndsctl.c `arguments[]`; %s is the whole (comma-joined) parameter string. */
const YES_NO: Record<string, readonly [string, string]> = {
  deauth: ['Client %s deauthenticated.\n', 'Client %s not found.\n'],
  auth: ['Client %s authenticated.\n', 'Failed to authenticate client %s.\n'],
  debuglevel: ['Debug level set to %s.\n', 'Failed to set debug level to %s.\n'],
  block: ['MAC %s blocked.\n', 'Failed to block MAC %s.\n'],
  unblock: ['MAC %s unblocked.\n', 'Failed to unblock MAC %s.\n'],
  allow: ['MAC %s allowed.\n', 'Failed to allow MAC %s.\n'],
  unallow: ['MAC %s unallowed.\n', 'Failed to unallow MAC %s.\n'],
  trust: ['MAC %s trusted.\n', 'Failed to trust MAC %s.\n'],
  untrust: ['MAC %s untrusted.\n', 'Failed to untrust MAC %s.\n'],
};
const OPENNDS_COMMANDS = new Set(['json', 'status', 'stop', ...Object.keys(YES_NO)]);
const NODOGSPLASH_COMMANDS = new Set(['clients', 'json', 'status', 'stop', ...Object.keys(YES_NO)]);

const USAGE = 'Usage: ndsctl [options] command [arguments]\n\n(ndsctl stand-in: json, auth, deauth, status, stop)\n';

const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });

export function executeNdsctl(model: NdsctlTarget, argv: readonly string[]): ExecResult {
  return model.flavour === 'opennds' ? executeOpenNds(model, argv) : executeNodogsplash(model, argv);
}

function executeOpenNds(model: NdsctlTarget, argv: readonly string[]): ExecResult {
  if (argv.length === 0) return { code: 1, stdout: USAGE, stderr: '' };
  let i = 0;
  if (argv[0] === '-s') {
    if (argv.length < 3) return { code: 1, stdout: USAGE, stderr: '' };
    i = 2; // deprecated and ignored by openNDS
  }
  const cmd = argv[i] as string;
  if (cmd === 'b64encode' || cmd === 'b64decode') {
    const text = argv[i + 1];
    if (text === undefined) return { code: 1, stdout: '', stderr: '' };
    return ok(
      cmd === 'b64encode' ? Buffer.from(text).toString('base64') : Buffer.from(text, 'base64').toString('utf8'),
    );
  }
  if (cmd === '-h') return ok(USAGE);
  if (!OPENNDS_COMMANDS.has(cmd)) return { code: 1, stdout: '', stderr: `Unknown command: ${cmd}\n` };
  if (!model.running) return notRunning('opennds');
  // main(): args[256] = argv[i+1] then ",argv[n]" pieces (each cut to 127 bytes), joined, cut to 255.
  const rest = argv.slice(i + 1);
  let param = rest.length > 0 ? (rest[0] as string).slice(0, 255) : '';
  for (const piece of rest.slice(1)) param = (param + `,${piece}`.slice(0, 127)).slice(0, 255);
  return dispatch(model, cmd, param, 'opennds');
}

function executeNodogsplash(model: NdsctlTarget, argv: readonly string[]): ExecResult {
  if (argv.length === 0) return ok(USAGE);
  if (argv[0] === '-h') return { code: 1, stdout: USAGE, stderr: '' };
  let i = 0;
  if (argv[0] === '-s') i = 2;
  // "Too many arguments": nodogsplash's ndsctl takes at most one argument after the command.
  if (argv.length > i + 2 || argv[i] === undefined) return { code: 1, stdout: USAGE, stderr: '' };
  const cmd = argv[i] as string;
  if (!NODOGSPLASH_COMMANDS.has(cmd)) return { code: 1, stdout: '', stderr: `Unknown command: ${cmd}\n` };
  if (!model.running) return notRunning('nodogsplash');
  return dispatch(model, cmd, argv[i + 1] ?? '', 'nodogsplash');
}

function dispatch(model: NdsctlTarget, cmd: string, param: string, flavour: 'opennds' | 'nodogsplash'): ExecResult {
  switch (cmd) {
    case 'json':
      // openNDS: `strlen(arg) > 6` selects one client; nodogsplash: any non-empty argument.
      return ok(
        model.renderJson(flavour, (flavour === 'opennds' ? param.length > 6 : param.length > 0) ? param : undefined),
      );
    case 'status':
      return ok(model.renderStatus());
    case 'stop':
      model.stop();
      return ok('');
    case 'auth':
      return yesNo(cmd, param, flavour === 'opennds' ? authOpenNds(model, param) : model.auth(param));
    case 'deauth':
      return yesNo(cmd, param, model.deauth(param));
    default:
      return { code: 2, stdout: '', stderr: `ndsctl stand-in: ${cmd} is not simulated\n` };
  }
}

/** ndsctl_thread.c ndsctl_auth: strsep on ',' then strtol on each field; missing fields keep the defaults. */
function authOpenNds(model: NdsctlTarget, param: string): boolean {
  const [target = '', minutes, upRate, downRate, upQuota, downQuota, custom] = param.split(',');
  return model.auth(target, {
    ...(minutes === undefined ? {} : { sessionMinutes: strtol(minutes) }),
    ...(upRate === undefined ? {} : { uploadRate: strtol(upRate) }),
    ...(downRate === undefined ? {} : { downloadRate: strtol(downRate) }),
    ...(upQuota === undefined ? {} : { uploadQuotaKiB: strtol(upQuota) }),
    ...(downQuota === undefined ? {} : { downloadQuotaKiB: strtol(downQuota) }),
    ...(custom === undefined ? {} : { custom: custom.slice(0, 255) }),
  });
}

function yesNo(cmd: string, param: string, yes: boolean): ExecResult {
  const [ifYes, ifNo] = YES_NO[cmd] as readonly [string, string];
  return { code: yes ? 0 : 1, stdout: (yes ? ifYes : ifNo).replace('%s', param), stderr: '' };
}

function notRunning(flavour: 'opennds' | 'nodogsplash'): ExecResult {
  return {
    code: 3,
    stdout: '',
    stderr: `ndsctl: ${flavour} probably not started (Error: No such file or directory)\n`,
  };
}

/** C strtol: optional sign and leading digits; anything unparsable is 0 (which the portal reads as "default"). */
function strtol(text: string): number {
  const m = /^\s*([+-]?\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}
