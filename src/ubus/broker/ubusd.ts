/** `sluice ubusd [-s socket]`: the embedded broker as a standalone daemon, a drop-in for ubusd in demos and tests. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { UBUS_DEFAULT_SOCKET } from '../codec/index.ts';
import { UbusBroker } from './broker.ts';

const USAGE =
  'Usage: sluice ubusd [-s <socket>]\n  -s <socket>  unix socket to listen on (default /var/run/ubus/ubus.sock)\n';

export interface RunUbusdIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Resolves when the daemon should stop; default: the first SIGINT or SIGTERM. */
  stopSignal?: Promise<unknown>;
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** Returns the process exit code: 0 after a clean stop, 1 when it cannot listen, 2 for bad arguments. */
export async function runUbusd(
  argv: string[],
  io: RunUbusdIo = {
    stdout: (l) => process.stdout.write(`${l}\n`),
    stderr: (l) => process.stderr.write(`${l}\n`),
  },
): Promise<number> {
  let socketPath = UBUS_DEFAULT_SOCKET;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-s' && argv[i + 1] !== undefined) socketPath = argv[++i]!;
    else if (arg.startsWith('-s') && arg.length > 2) socketPath = arg.slice(2);
    else if (arg === '-h' || arg === '--help') {
      io.stdout(USAGE.trimEnd());
      return 0;
    } else {
      io.stderr(`sluice ubusd: unexpected argument "${arg}"\n${USAGE.trimEnd()}`);
      return 2;
    }
  }
  let broker: UbusBroker;
  try {
    mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
    broker = await UbusBroker.listen({ socketPath, log: io.stderr });
  } catch (err) {
    io.stderr(`sluice ubusd: ${(err as Error).message}`);
    return 1;
  }
  io.stdout(`sluice ubusd: listening on ${socketPath}`);
  await (io.stopSignal ?? waitForSignal());
  await broker.close();
  return 0;
}
