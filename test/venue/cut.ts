/**
 * A network split between one router and the venue's broker, for the roaming tests: a TCP relay in front of the
 * broker that the test cuts (every connection through it dropped, new ones refused) and heals (it listens again on the
 * same port, so the router's client reconnects by itself).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../helpers/net.ts';

export class Cuttable {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly targetPort: number,
    readonly port: number,
  ) {}

  /** A relay to 127.0.0.1:`targetPort`, open. */
  static async open(targetPort: number): Promise<Cuttable> {
    const relay = new Cuttable(targetPort, await freePort());
    await relay.heal();
    return relay;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Relays again. */
  async heal(): Promise<void> {
    if (this.server) return;
    const server = createServer((inbound) => {
      const outbound = createConnection({ host: '127.0.0.1', port: this.targetPort });
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  /** Drops every connection through the relay and refuses new ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }
}
