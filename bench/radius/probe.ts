// Child of `npm run bench -- radius`: a RADIUS server's side of Disconnect. Sends one Disconnect-Request at a time
// (one per session id read from argv's file), waits for the answer, and prints the round-trip times as one JSON line.
// Run in its own process so the timing is sluice's main thread, not the prober's.
// argv: <port> <secret> <ids.json> <gap ms>
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { decodePacket, encodeRequest, CODE } from '../../src/radius/packet.ts';

const [portArg, secret, idsFile, gapArg] = process.argv.slice(2);
const ids = JSON.parse(readFileSync(idsFile!, 'utf8')) as string[];
const socket = createSocket('udp4');
await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
let waiting: ((code: number) => void) | null = null;
socket.on('message', (m) => {
  waiting?.(decodePacket(m).code);
});
const rtts: number[] = [];
let acks = 0;
for (let i = 0; i < ids.length; i++) {
  const packet = encodeRequest({
    code: 'Disconnect-Request',
    identifier: i & 0xff,
    secret: secret!,
    attributes: [['Acct-Session-Id', ids[i]!]],
  });
  const t0 = performance.now();
  const code = await new Promise<number>((resolve) => {
    const timer = setTimeout(() => resolve(-1), 5000);
    waiting = (c) => {
      clearTimeout(timer);
      resolve(c);
    };
    socket.send(packet, Number(portArg), '127.0.0.1');
  });
  rtts.push(performance.now() - t0);
  if (code === CODE['Disconnect-ACK']) acks++;
  await new Promise((r) => setTimeout(r, Number(gapArg)));
}
socket.close();
process.stdout.write(JSON.stringify({ rtts, acks }) + '\n');
