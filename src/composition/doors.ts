/**
 * The doors over the built parts, in one pass: the config's sinks (MQTT, the hook, the venue), the ubus backend and
 * method table, the LAN endpoint and the methods' own doors asking the one MAC resolver, the config reloader they
 * follow; then the daemon's port is served over them (api/daemon-port.ts: the one cycle, and why).
 */
import type { Config, ConfigProblem, ConfigReloader } from '../config/index.ts';
import type { Logger } from '../log.ts';
import type { Session } from '../sessions/index.ts';
import { DaemonBackend, methodTable, type DaemonPort } from '../api/index.ts';
import { macResolver } from '../gate/index.ts';
import { addSinks } from '../upstream/index.ts';
import { LanEndpointKeeper } from '../http/index.ts';
import { configReloader, type ReloaderOptions } from './reloader.ts';
import type { Parts } from './parts.ts';

export interface Doors {
  backend: DaemonBackend;
  methods: ReturnType<typeof methodTable>;
  reloader: ConfigReloader;
  /** The LAN endpoint, the methods' own doors and the walled garden to `config` and what the methods serve now. */
  follow(config: Config): Promise<void>;
}

export interface Started {
  config: Config;
  problems: readonly ConfigProblem[];
  recovered: () => { ended: readonly Session[] };
  port: DaemonPort;
  startedAt: number;
}

export async function openDoors(options: ReloaderOptions, log: Logger, parts: Parts, started: Started): Promise<Doors> {
  const { upstream, sessions, payments, events, garden, valve, meter, gates, merchant, pricing, store } = parts;
  const { port, config, recovered } = started;
  const venue = await addSinks(config, upstream, {
    ...{ log, recovered, sessions, meter, status: port.status, command: port.command },
    gateClosed: (mac) => gates.closed(mac),
    tail: { gate: gates, counters: parts.counters },
    leases: parts.ipv6Gate,
  });
  const backend = new DaemonBackend({
    ...{ merchant: () => merchant, plans: () => pricing.list(), sessions, gates, venue, payments },
    ...{ stats: port.stats, reload: port.reload },
    // A rate change is an event of its own: MQTT and the hook (durable), the ubus event and a log line.
    ratesChanged: (change) => {
      upstream.ratesChanged(change.session, change.previous, change.by);
      events.rates(change);
    },
  });
  const { ndsctlTimeoutMs: fetchTimeoutMs } = config.main;
  const { macOf } = macResolver({ valve, meter, fetchTimeoutMs, devices: parts.metering.devices });
  const lan = new LanEndpointKeeper({ backend, log, macOf });
  const services = backend.doorServices(macOf);
  const follow = async (next: Config): Promise<void> => {
    await lan.follow(next, payments.lan(next));
    await payments.followDoors(next, services);
    await garden.follow(next);
  };
  const reloader = configReloader(options, log, started, parts, { follow, moveListen: (http) => lan.move(http) });
  // A method whose reason to serve changed (PluginHost.servesChanged): the endpoint follows at once.
  payments.onServesChanged(() => follow(reloader.config));
  const methods = methodTable(payments.registrations);
  const figures = { ...parts, config: reloader, startedAt: started.startedAt, journal: store, http: () => lan.running };
  port.serve({ backend, methods, figures, reload: () => reloader.reload() });
  parts.closers.push(
    () => lan.close(),
    () => garden.close(),
    async () => venue?.close(),
    ...payments.closers(),
  );
  return { backend, methods, reloader, follow };
}
