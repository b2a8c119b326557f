/**
 * `sluice ubus …`: the OpenWrt `ubus` CLI (ubus cli.c) on top of UbusClient, with the same output formats,
 * messages and exit codes, so scripts written for one work with the other. Supported: list, call, listen,
 * subscribe, send. The exit code is what the C program's `return ret` from main becomes (ret & 0xff).
 */
import {
  BlobmsgType,
  Status,
  UBUS_DEFAULT_SOCKET,
  UBUS_SYSTEM_OBJECT_EVENT,
  decodeBlobmsgNodes,
  encodeBlobmsgNodes,
} from './codec/index.ts';
import type { BlobmsgNode, UbusMessage } from './codec/index.ts';
import { UbusClient } from './client.ts';
import { UbusError, UbusStatusError, statusText } from './errors.ts';
import { formatBlobmsgElement, formatBlobmsgJson, parseJsonToBlobmsg } from './json.ts';

export interface UbusCliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The C CLI words its errors differently (and exits differently) when stderr is a terminal. */
  stderrIsTTY: boolean;
  /** Ends `listen`/`subscribe` (the C CLI stops on SIGINT/SIGTERM; those are handled too when no signal is given). */
  signal?: AbortSignal;
  progname: string;
}

interface CliOptions {
  socketPath: string;
  timeoutS: number;
  simple: boolean;
  verbose: number;
}

const USAGE = (prog: string): string => `Usage: ${prog} [<options>] <command> [arguments...]
Options:
 -s <socket>:\t\tSet the unix domain socket to connect to
 -t <timeout>:\t\tSet the timeout (in seconds) for a command to complete
 -S:\t\t\tUse simplified output (for scripts)
 -v:\t\t\tMore verbose output

Commands:
 - list [<path>]\t\t\tList objects
 - call <path> <method> [<message>]\tCall an object method
 - subscribe <path> [<path>...]\tSubscribe to object(s) notifications
 - listen [<path>...]\t\t\tListen for events
 - send <type> [<message>]\t\tSend an event

`;

/** Exit status as the shell sees it: C's `return -2` from main is 254. */
const exitCode = (ret: number): number => ret & 0xff;

export async function runUbusCli(argv: string[], ioOverrides: Partial<UbusCliIo> = {}): Promise<number> {
  const io: UbusCliIo = {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    stderrIsTTY: process.stderr.isTTY === true,
    progname: 'ubus',
    ...ioOverrides,
  };
  const parsed = parseArgs(argv, io);
  if (typeof parsed === 'number') return parsed;
  const { opts, operands } = parsed;
  if (operands.length < 1) return usage(io);
  const [cmd, ...args] = operands as [string, ...string[]];

  let client: UbusClient;
  try {
    client = await UbusClient.connect({ socketPath: opts.socketPath, timeoutMs: opts.timeoutS * 1000 });
  } catch {
    if (!opts.simple) io.stderr('Failed to connect to ubus\n');
    return exitCode(-1);
  }
  try {
    const command = COMMANDS[cmd];
    const ret = command === undefined ? -2 : await command(client, args, opts, io);
    if (ret > 0 && !opts.simple) io.stderr(`Command failed: ${statusText(ret)}\n`);
    else if (ret === -2) usage(io);
    return exitCode(ret);
  } finally {
    client.destroy();
  }
}

type Command = (client: UbusClient, args: string[], opts: CliOptions, io: UbusCliIo) => Promise<number>;

const COMMANDS: Record<string, Command> = { list, call, listen, subscribe, send };

/** getopt("m:M:vs:t:S") as glibc does it: options may follow operands, "--" ends them, "-vS" clusters. */
function parseArgs(argv: string[], io: UbusCliIo): { opts: CliOptions; operands: string[] } | number {
  const opts: CliOptions = { socketPath: UBUS_DEFAULT_SOCKET, timeoutS: 30, simple: false, verbose: 0 };
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      operands.push(arg);
      continue;
    }
    for (let j = 1; j < arg.length; j++) {
      const ch = arg[j]!;
      if (ch === 'v') opts.verbose++;
      else if (ch === 'S') opts.simple = true;
      else if ('stmM'.includes(ch)) {
        let value = arg.slice(j + 1);
        if (value === '') {
          if (i + 1 >= argv.length) {
            io.stderr(`${io.progname}: option requires an argument -- '${ch}'\n`);
            return usage(io);
          }
          value = argv[++i]!;
        }
        if (ch === 's') opts.socketPath = value;
        else if (ch === 't') opts.timeoutS = atoi(value);
        else return unsupported(io, ch);
        break;
      } else {
        io.stderr(`${io.progname}: invalid option -- '${ch}'\n`);
        return usage(io);
      }
    }
  }
  return { opts, operands };
}

/** C atoi: leading integer, 0 when there is none. */
function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m === null ? 0 : Number.parseInt(m[1]!, 10);
}

function usage(io: UbusCliIo): number {
  io.stderr(USAGE(io.progname));
  return 1;
}

function unsupported(io: UbusCliIo, ch: string): number {
  io.stderr(`${io.progname}: option -${ch} (monitor) is not supported\n`);
  return 1;
}

/**
 * ubus_cli_error(): the long form names the whole command, and the exit status is then -err. `cli`: the run's options
 * and streams.
 */
function cliError(cli: { opts: CliOptions; io: UbusCliIo }, cmd: string, args: string[], err: number): number {
  const { opts, io } = cli;
  if (!opts.simple && !io.stderrIsTTY) {
    io.stderr(`Command failed: ubus ${cmd} ${args.map((a) => `${a} `).join('')}(${statusText(err)})\n`);
    return -err;
  }
  return err;
}

const statusOf = (err: unknown): number => {
  if (err instanceof UbusError) return err.status;
  throw err;
};

const nodesOf = (msg: UbusMessage): BlobmsgNode[] =>
  msg.attrs.dataRaw === undefined ? [] : decodeBlobmsgNodes(msg.attrs.dataRaw);

/** format_type() in cli.c: signature values are blobmsg type numbers, printed by name. */
const SIGNATURE_TYPE_NAMES: Record<number, string> = {
  [BlobmsgType.INT8]: '"Boolean"',
  [BlobmsgType.INT32]: '"Integer"',
  [BlobmsgType.STRING]: '"String"',
  [BlobmsgType.ARRAY]: '"Array"',
  [BlobmsgType.TABLE]: '"Table"',
};
const signatureLeaf = (n: BlobmsgNode): string | undefined =>
  n.type === BlobmsgType.INT32 ? (SIGNATURE_TYPE_NAMES[Number(n.value)] ?? '"(unknown)"') : undefined;

async function list(client: UbusClient, args: string[], opts: CliOptions, io: UbusCliIo): Promise<number> {
  if (args.length > 1) return -2;
  let objects;
  try {
    objects = await client.lookup(args[0]);
  } catch (err) {
    return statusOf(err);
  }
  for (const obj of objects) {
    if (opts.simple || opts.verbose === 0) {
      io.stdout(`${obj.path}\n`);
      continue;
    }
    io.stdout(`'${obj.path}' @${obj.id.toString(16).padStart(8, '0')}\n`);
    for (const [method, argTypes] of Object.entries(obj.signature)) {
      const children = Object.entries(argTypes).map(([name, type]) => ({ name, type: BlobmsgType.INT32, value: type }));
      const table = { name: method, type: BlobmsgType.TABLE, children };
      io.stdout(`\t${formatBlobmsgElement(table, { formatLeaf: signatureLeaf })}\n`);
    }
  }
  return 0;
}

async function call(client: UbusClient, args: string[], opts: CliOptions, io: UbusCliIo): Promise<number> {
  if (args.length < 2 || args.length > 3) return -2;
  const [path, method, json] = args as [string, string, string | undefined];
  const nodes = json === undefined ? [] : parseJsonToBlobmsg(json);
  if (nodes === undefined) return cliError({ opts, io }, 'call', args, Status.PARSE_ERROR);
  let id: number;
  try {
    id = await client.lookupId(path);
  } catch (err) {
    return statusOf(err);
  }
  const print = (replies: UbusMessage[]): void => {
    for (const msg of replies) {
      if (msg.attrs.dataRaw === undefined) continue;
      io.stdout(`${formatBlobmsgJson(nodesOf(msg), { indent: opts.simple ? -1 : 0 })}\n`);
    }
  };
  try {
    print(await client.callMessages(id, method, encodeBlobmsgNodes(nodes), { timeoutMs: opts.timeoutS * 1000 }));
  } catch (err) {
    // libubus hands every DATA to the callback before the STATUS arrives, so the C CLI prints them too.
    if (err instanceof UbusStatusError) print(err.messages);
    return cliError({ opts, io }, 'call', args, statusOf(err));
  }
  return 0;
}

const printEvent =
  (io: UbusCliIo) =>
  (type: string, _data: unknown, msg: UbusMessage): void => {
    io.stdout(`{ "${type}": ${formatBlobmsgJson(nodesOf(msg))} }\n`);
  };

async function listen(client: UbusClient, args: string[], opts: CliOptions, io: UbusCliIo): Promise<number> {
  const patterns = args.length > 0 ? args : ['*'];
  try {
    await client.listen(patterns, printEvent(io));
  } catch (err) {
    const status = statusOf(err);
    const pattern =
      err instanceof UbusStatusError && err.context.startsWith('listen ') ? err.context.slice(7) : patterns[0]!;
    if (!opts.simple) io.stderr(`Error while registering for event '${pattern}': ${statusText(status)}\n`);
    return -1;
  }
  await runUntilDone(client, opts, io);
  return 0;
}

async function subscribe(client: UbusClient, args: string[], opts: CliOptions, io: UbusCliIo): Promise<number> {
  if (args.length === 0) {
    if (!opts.simple) io.stderr('You need to specify an object to subscribe to\n');
    return -1;
  }
  for (const path of args) {
    try {
      await client.subscribe(path, printEvent(io));
    } catch (err) {
      // cli.c names the first path here whichever one failed.
      if (!opts.simple) io.stderr(`Error while registering for event '${args[0]!}': ${statusText(statusOf(err))}\n`);
      return -1;
    }
  }
  await runUntilDone(client, opts, io);
  return 0;
}

async function send(client: UbusClient, args: string[], _opts: CliOptions, _io: UbusCliIo): Promise<number> {
  if (args.length < 1 || args.length > 2) return -2;
  const nodes = args.length === 2 ? parseJsonToBlobmsg(args[1]!) : [];
  if (nodes === undefined) return Status.PARSE_ERROR;
  const body = encodeBlobmsgNodes([
    { name: 'id', type: BlobmsgType.STRING, value: args[0]! },
    { name: 'data', type: BlobmsgType.TABLE, children: nodes },
  ]);
  try {
    // ubus_send_event() waits without a timeout.
    await client.callMessages(UBUS_SYSTEM_OBJECT_EVENT, 'send', body, { timeoutMs: 0 });
  } catch (err) {
    return statusOf(err);
  }
  return 0;
}

/** uloop_run(): until -t seconds pass (when set), a signal, or ubusd going away. */
async function runUntilDone(client: UbusClient, opts: CliOptions, io: UbusCliIo): Promise<void> {
  await new Promise<void>((resolve) => {
    const cleanups: (() => void)[] = [];
    const done = (): void => {
      for (const c of cleanups) c();
      resolve();
    };
    if (opts.timeoutS > 0) {
      const t = setTimeout(done, opts.timeoutS * 1000);
      cleanups.push(() => clearTimeout(t));
    }
    const onState = (state: string): void => {
      if (state === 'closed') done();
    };
    client.on('state', onState);
    cleanups.push(() => client.off('state', onState));
    if (io.signal !== undefined) {
      if (io.signal.aborted) return done();
      io.signal.addEventListener('abort', done, { once: true });
      cleanups.push(() => io.signal!.removeEventListener('abort', done));
    } else {
      process.once('SIGINT', done).once('SIGTERM', done);
      cleanups.push(() => process.off('SIGINT', done).off('SIGTERM', done));
    }
  });
}
