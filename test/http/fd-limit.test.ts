// tier: daemon
/**
 * Idle connections to the LAN endpoint cannot take the daemon's file descriptors: the real daemon under `ulimit -n
 * 200` (so a few hundred sockets are the ~1,100 of a router's 1024), flooded with connections from 20 client IPs. The
 * endpoint keeps at most a quarter of the limit, the meter keeps reading the portal (no tick skipped for EMFILE), ubus
 * still answers, and a fresh client is served once the flood goes.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DaemonLab } from '../daemon/harness.ts';
import { freePort } from '../helpers/net.ts';
import { httpSection, timePlanSection, x402Section } from '../helpers/uci-sections.ts';

const FD_LIMIT = 200;
/** What the endpoint may hold under FD_LIMIT (src/listener/connection-limits.ts: a quarter of the limit). */
const BOUND = FD_LIMIT / 4;
const IPS = 20;
const PER_IP = 15;

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test(
  'a connection flood leaves the meter ticking and the ' + 'daemon answering; a fresh client is served after it',
  async () => {
    const port = await freePort();
    // The facilitator is never asked (no purchase here): a free port with nothing on it.
    const lab = await DaemonLab.create({
      pollInterval: 0.3,
      portalSocket: true,
      fdLimit: FD_LIMIT,
      extraConfig:
        timePlanSection({ asset: '0x036CbD53842c5426634e7929541eC2318f3dCF7e', price: 1000 }) +
        x402Section({
          facilitatorUrl: `http://127.0.0.1:${await freePort()}`,
          payTo: '0x000000000000000000000000000000000000dEaD',
        }) +
        httpSection(port, 1000),
    });
    lab.portal.addClient('02:00:00:00:0f:01', '127.0.0.1');
    const sockets: Socket[] = [];
    let open = 0;
    try {
      await lab.startDaemon();
      assert.match(lab.output, /LAN endpoint listening.*max_connections=50/);
      const meter = async () =>
        (await lab.call('stats')).meter as { ticks_ok: number; skipped: Record<string, number> };
      for (let ip = 1; ip <= IPS; ip++) {
        for (let n = 0; n < PER_IP; n++) {
          const s = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${ip + 1}` });
          s.on('error', () => undefined);
          sockets.push(s);
          let connected = false;
          s.once('connect', () => {
            connected = true;
            open++;
          });
          s.once('close', () => {
            if (connected) open--;
          });
          await new Promise<void>((r) => {
            s.once('connect', () => r());
            s.once('close', () => r());
          });
        }
      }
      // The endpoint closes what is past its bound as it accepts.
      await lab.waitFor(() => open <= BOUND, 30_000, `at most ${BOUND} connections held (${open})`);
      // With the flood held: ubus answers and the meter ticks, reading the portal over its socket.
      const before = await meter();
      await lab.waitFor(
        async () => (await meter()).ticks_ok >= before.ticks_ok + 3,
        30_000,
        'three meter ticks during the flood',
      );
      const during = await meter();
      assert.equal(during.skipped, {}, `no tick skipped: ${JSON.stringify(during.skipped)}`);
      assert.not.match(lab.output, /EMFILE/);

      for (const s of sockets) s.destroy();
      await lab.waitFor(() => open === 0, 30_000, 'flood gone');
      let status: number | undefined;
      // The daemon hears of the closes after this process does: a refusal in between is the bound still counting them.
      while (status === undefined) status = await get(port, '/').catch(() => undefined);
      assert.is(status, 200);
    } finally {
      for (const s of sockets) s.destroy();
      await lab.close();
    }
  },
);

test.run();
