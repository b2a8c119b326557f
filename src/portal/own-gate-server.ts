/**
 * sluice's own gate on a unix socket, in the control protocol openNDS's ndsctl speaks (socket-transport.ts is the
 * client side): a request `<cmd> <args joined by ','>\r\n\r\n`, the whole answer, then the gate closes the connection.
 * `auth <mac>[,…]` and `deauth <mac|ip|token>` answer `Yes` or `No`, `json` every open gate, `json <mac|ip|token>` one
 * device (`{}`: unknown), `status` a line saying what this is. What the valve and the meter's worker send, they send
 * here unchanged. The socket is made for root alone (0600 in a directory of the daemon's).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { silentLogger, type Log } from '../log.ts';
import type { OwnGate } from './own-gate.ts';

/** A request longer than ndsctl ever sends (socket-transport.ts MAX_SOCKET_REQUEST) is dropped. */
const MAX_REQUEST = 4096;

/** The default socket when `main.ndsctl_socket` is 'auto' with `portal 'sluice'`. */
export const OWN_GATE_SOCKET = '/var/run/sluice/gate.sock';

export type GateAnswer = (cmd: string, args: readonly string[]) => Promise<string>;

/** What the gate answers a request (the protocol's verbs); anything else is `No`, as openNDS answers an unknown one. */
export function gateAnswer(gate: OwnGate): GateAnswer {
  return async (cmd, args) => {
    const [target] = args;
    if (cmd === 'json') return target === undefined || target === '' ? gate.listing() : gate.lookup(target);
    if (cmd === 'auth' && target !== undefined) return (await gate.auth(target)) ? 'Yes' : 'No';
    if (cmd === 'deauth' && target !== undefined)
      return (await gate.deauth(await macOrSelf(gate, target))) ? 'Yes' : 'No';
    if (cmd === 'status') return `sluice gate: ${gate.passing().length} devices passing\n`;
    return 'No';
  };
}

/** A token or an address the gate holds, as the MAC it names; anything else as it is. */
async function macOrSelf(gate: OwnGate, target: string): Promise<string> {
  const found = JSON.parse(await gate.lookup(target)) as { mac?: string };
  return found.mac ?? target;
}

/** Parses a request line (`cmd` or `cmd a,b,c`), null when it is none. */
export function parseRequest(text: string): { cmd: string; args: string[] } | null {
  const line = text.split('\r\n')[0]?.trim() ?? '';
  if (line === '') return null;
  const space = line.indexOf(' ');
  if (space < 0) return { cmd: line, args: [] };
  return { cmd: line.slice(0, space), args: line.slice(space + 1).split(',') };
}

export class OwnGateServer {
  readonly #server: Server;
  readonly #path: string;
  readonly #log: Log;

  private constructor(server: Server, path: string, log: Log) {
    this.#server = server;
    this.#path = path;
    this.#log = log;
  }

  /** Listens on `path` (a stale socket there is replaced). */
  static async listen(path: string, answer: GateAnswer, log: Log = silentLogger): Promise<OwnGateServer> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await unlink(path).catch(() => undefined);
    const server = createServer((socket) => serve(socket, answer, log));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(path, 0o600);
    server.on('error', (err) => log.warn('gate socket error', { reason: err.message }));
    return new OwnGateServer(server, path, log);
  }

  get path(): string {
    return this.#path;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await unlink(this.#path).catch(() => undefined);
    this.#log.debug('gate socket closed', { path: this.#path });
  }
}

function serve(socket: Socket, answer: GateAnswer, log: Log): void {
  let text = '';
  let answered = false;
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    if (answered) return;
    text += chunk;
    if (text.length > MAX_REQUEST) {
      socket.destroy();
      return;
    }
    if (!text.includes('\r\n\r\n')) return;
    answered = true;
    const request = parseRequest(text);
    if (request === null) {
      socket.end('No');
      return;
    }
    answer(request.cmd, request.args).then(
      (reply) => socket.end(reply),
      (err: unknown) => {
        // An nft run that failed: the caller hears an abnormal answer (ndsctl's exit 2), the gate is as it was.
        log.warn('gate call failed', { cmd: request.cmd, reason: (err as Error).message });
        socket.end('Error');
      },
    );
  });
}
