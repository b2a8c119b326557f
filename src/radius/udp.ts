/**
 * Node's dgram, required on the first UDP socket rather than at start: a router with RADIUS off never loads it
 * (~0.4 MB of RSS with its dependencies, docs/performance.md "Idle memory"). Synchronous, as dgram.createSocket is.
 */
import { createRequire } from 'node:module';
import type { Socket, SocketOptions, SocketType } from 'node:dgram';

let dgram: typeof import('node:dgram') | undefined;

export function createUdpSocket(options: SocketType | SocketOptions): Socket {
  dgram ??= createRequire(import.meta.url)('node:dgram') as typeof import('node:dgram');
  return dgram.createSocket(options as SocketOptions);
}
