/** Ports for the peers, daemons and servers a test starts. */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * A port on 127.0.0.1 that is free for TCP and for UDP at the time of the call (RADIUS and the DAS listen on UDP,
 * HTTP and MQTT on TCP; one helper serves both). Another process may take it before the caller binds it: the
 * kernel hands out ephemeral ports in a sequence, so a reuse that soon is rare, and a bind error then names it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket('udp4');
      socket.once('error', () => { socket.close(); resolve(false); });
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
    if (attempt >= 20) throw new Error(`no port free for both TCP and UDP in ${attempt + 1} tries (last ${port})`);
  }
}
