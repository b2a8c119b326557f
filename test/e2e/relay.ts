/**
 * Makes a TCP service of the test process (the chain, the facilitator: on 127.0.0.1 in the host's namespace) reachable
 * on the same 127.0.0.1:port inside the lab's router, where sluice runs: a unix socket in the lab's directory crosses
 * the namespace boundary (both sides see the same file system), a forwarder in each namespace joins the ends.
 */
import { spawn } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Lab } from './lab.ts';
import { waitFor } from './lab.ts';

/** The router-side forwarder: TCP 127.0.0.1:port → the unix socket. Run with `node -e` inside the namespace. */
const ROUTER_SIDE = `
const net = require('node:net');
const [port, path] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(path);
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
})
  .listen(Number(port), '127.0.0.1', () => console.log('listening'));
`;

export interface Relay {
  close(): Promise<void>;
}

export async function relayIntoRouter(lab: Lab, port: number): Promise<Relay> {
  const path = join(lab.dir, `relay-${port}.sock`);
  const server: Server = createServer((c) => {
    const t = connect(port, '127.0.0.1');
    c.pipe(t);
    t.pipe(c);
    c.on('error', () => t.destroy());
    t.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  const child = spawn('ip', ['netns', 'exec', lab.rtNs, process.execPath, '-e', ROUTER_SIDE, String(port), path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.once('exit', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    `the relay of port ${port} into the router`,
    10_000,
    async () => {
      if (child.exitCode !== null) throw new Error(`relay exited ${child.exitCode}`);
      return out.includes('listening') && existsSync(path) ? true : undefined;
    },
    50,
  );
  return {
    close: async () => {
      child.kill('SIGKILL');
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
