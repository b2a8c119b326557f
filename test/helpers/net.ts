/** Ports for the peers, daemons and servers a test starts. */
import { createSocket } from 'node:dgram';
import { createConnection, createServer } from 'node:net';

/**
 * Where freePort picks: below Linux's ephemeral range (32768–60999 by default), so no outgoing connection's local port
 * and no listen(0) elsewhere on the machine lands on a port a test chose. A test that restarts a peer on the same
 * port (a mint, a broker, a facilitator) needs that: with ports from the ephemeral range, the port was taken by some
 * other process's connection while the peer was down (EADDRINUSE in peers/cashu-mint's rotation test, at load ~35
 * with five files at a time).
 */
const LOW = 20_000;
const HIGH = 32_767;

/** True when `port` on 127.0.0.1 can be bound now for TCP and for UDP. */
async function bindable(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/**
 * A port on 127.0.0.1 that is free for TCP and for UDP at the time of the call (RADIUS and the DAS listen on UDP,
 * HTTP and MQTT on TCP; one helper serves both), picked at random below the ephemeral range. Another test process may
 * pick the same one before the caller binds it: one chance in ~12,800 per pair of picks, and a bind error names it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (await bindable(port)) return port;
  }
  throw new Error(`no port free for both TCP and UDP in 50 tries between ${LOW} and ${HIGH}`);
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
