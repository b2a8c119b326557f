/**
 * The fleet demo's routers: each one the real daemon (as `sluice demo` runs it) with its own embedded ubus broker,
 * simulated openNDS and state directory, its MQTT section pointed at the demo's broker with signed commands on, and a
 * portal that sells time and data to the simulated clients now and then.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon } from '../../daemon.ts';
import { quoteUci } from '../../config/index.ts';
import { demoPaymentMethod } from '../../demo/index.ts';
import type { Logger } from '../../log.ts';
import { prng } from '../../prng.ts';
import { listenNdsctlSocket, PortalModel, portalRequestHandler, TrafficSimulator } from '../../sim/index.ts';
import { UbusClient } from '../../ubus/index.ts';
import { UbusBroker } from '../../ubus/broker/index.ts';

export interface DemoRouter {
  name: string;
  stop(): Promise<void>;
}

export interface DemoRouterOptions {
  name: string;
  dir: string;
  brokerUrl: string;
  commandSecret: string;
  clients: number;
  seed: number;
  /** Purchases per minute, roughly. */
  salesPerMinute: number;
  log: Logger;
}

/**
 * The demo routers' checkpoint interval, seconds: their usage reaches the broker only once a checkpoint has written it
 * to flash, so the shipped 300 s would leave the dashboard's usage still for five minutes at a time.
 */
export const DEMO_CHECKPOINT_S = 10;

function config(o: DemoRouterOptions, portalSocket: string): string {
  return `config sluice 'main'
\toption router_id ${quoteUci(o.name)}
\toption state_dir ${quoteUci(join(o.dir, 'state'))}
\toption ndsctl_socket ${quoteUci(portalSocket)}
\toption portal 'opennds'
\toption poll_interval '2'
\toption checkpoint_interval '${DEMO_CHECKPOINT_S}'
\toption log_level 'warn'

config pricing 'data'
\toption metric 'bytes'
\toption step_size '256KiB'
\toption price_per_step '100'
\toption min_steps '1'
\toption max_steps '50'
\toption currency 'sat'
\toption decimals '0'

config pricing 'time'
\toption metric 'seconds'
\toption step_size '60'
\toption price_per_step '250'
\toption min_steps '1'
\toption max_steps '60'
\toption currency 'sat'
\toption decimals '0'

config mqtt 'mqtt'
\toption enabled '1'
\toption url ${quoteUci(o.brokerUrl)}
\toption protocol '3.1.1'
\toption status_interval '10'
\toption keepalive '10'
\toption commands '1'
`;
}

/**
 * The meter's worker: dist/usage-worker.mjs beside the fleet's bundle (dist/fleet/fleet.mjs), or from sources
 * workers/usage.ts under tsx.
 */
function usageWorker(): { path: URL; execArgv?: string[] } {
  const built = new URL('../usage-worker.mjs', import.meta.url);
  if (import.meta.url.endsWith('.mjs') && existsSync(built)) return { path: built };
  return { path: new URL('../../../workers/usage.ts', import.meta.url), execArgv: ['--import', 'tsx'] };
}

export async function startDemoRouter(o: DemoRouterOptions): Promise<DemoRouter> {
  mkdirSync(o.dir, { recursive: true });
  const ubusSocket = join(o.dir, 'ubus.sock');
  const portalSocket = join(o.dir, 'ndsctl.sock');
  const configPath = join(o.dir, 'sluice.uci');
  writeFileSync(configPath, config(o, portalSocket));
  // The command key where a router keeps its secrets (configuration.md): readable by root only.
  writeFileSync(`${configPath}_secrets`, `config mqtt 'mqtt'\n\toption command_secret ${quoteUci(o.commandSecret)}\n`, {
    mode: 0o600,
  });
  const model = new PortalModel({ flavour: 'opennds', gatewayName: o.name });
  const traffic = new TrafficSimulator(model, {
    clients: o.clients,
    seed: o.seed,
    authenticatedShare: 0,
    medianRateBps: 40_000,
    burstChance: 0.002,
    departureChance: 0.001,
    resetChance: 0,
  });
  traffic.populate();
  const portal = await listenNdsctlSocket(portalSocket, portalRequestHandler(model));
  const ubus = await UbusBroker.listen({ socketPath: ubusSocket });
  const daemon = await Daemon.start({
    configPath,
    ubusSocket,
    log: o.log,
    paymentMethods: [demoPaymentMethod],
    meterSource: { kind: 'socket', path: portalSocket },
    meterWorker: usageWorker(),
  });
  const client = await UbusClient.connect({ socketPath: ubusSocket, timeoutMs: 15_000 });
  const random = prng(o.seed);
  let last = Date.now();
  let reference = 0;
  const timers = [
    setInterval(() => {
      const now = Date.now();
      traffic.step(now - last);
      last = now;
    }, 250),
    setInterval(
      () => {
        const waiting = model.clients().filter((c) => c.state === 'Preauthenticated');
        const c = waiting[Math.floor(random() * waiting.length)];
        if (c === undefined) return;
        const args =
          random() < 0.5
            ? { plan: 'data', steps: 4 + Math.floor(random() * 40) }
            : { plan: 'time', steps: 5 + Math.floor(random() * 55) };
        const payment = { method: 'demo', reference: `${o.name}-${process.pid}-${++reference}` };
        client.call('sluice', 'purchase', { mac: c.mac, ...args, payment }).catch(() => undefined);
      },
      Math.round(60_000 / o.salesPerMinute),
    ),
  ];
  return {
    name: o.name,
    async stop() {
      for (const t of timers) clearInterval(t);
      client.destroy();
      await daemon.stop();
      await portal.close();
      await ubus.close();
    },
  };
}
