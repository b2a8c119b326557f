/**
 * TollGate's door kept to the config in force (`tollgate.listen`): opened when the section is on with a listen
 * address, moved when the address changes (the new socket bound first: listener/), closed when the section goes off
 * or the address is cleared; no restart. It opens with the router's Nostr key (made at the first start) and the
 * accepted mints' health for the advertisement; a reload's prices and mints apply to the next answer. A key that cannot
 * be read back keeps the door off (logged); an address that cannot be bound is tried again on its own until it binds
 * (listener/bind-again.ts); the rest of the daemon runs meanwhile. The mints'
 * probes are a background pass of the plugin's (`probes`): they ask only while the door is open.
 */
import type { Config } from '../../../config/index.ts';
import { toSluiceError } from '../../../errors.ts';
import { BindAgain, openFileLimit, totalConnectionBound } from '../../../listener/index.ts';
import type { Log } from '../../../log.ts';
import type { BackgroundPass, DoorServices, PluginDoor } from '../../plugin.ts';
import { openRouterKey } from '../nostr/index.ts';
import { TollgateDoor } from './door.ts';
import { MintHealth } from './mints.ts';

interface Open {
  door: TollgateDoor;
  at: string;
}

const listenOf = (config: Config): { host: string; port: number } | null => {
  const listen = config.tollgate?.listen;
  return listen && listen.host !== '' ? listen : null;
};

export function tollgateDoorKeeper(log: Log): PluginDoor & { probes: BackgroundPass } {
  let current: Config | undefined;
  let open: Open | null = null;
  let services: DoorServices | undefined;
  /** One follow at a time: a try after a refused bind and a reload's follow never both start a door. */
  let queue: Promise<void> = Promise.resolve();
  const again = new BindAgain(() => {
    if (current && services) void keeper.follow(current, services).catch(() => undefined);
  });
  const settings = (): Config['tollgate'] => current?.tollgate ?? null;
  // The accepted mints, while the door is open (closed: nothing to advertise, nothing asked).
  const health = new MintHealth(() => (open ? (settings()?.mints ?? []) : []));

  async function start(config: Config, services: DoorServices, at: string): Promise<Open | null> {
    const listen = listenOf(config)!;
    try {
      const key = await openRouterKey(config.main.stateDir);
      if (key.created) log.info("TollGate: the router's Nostr key was made", { pubkey: key.pubkey });
      const door = await TollgateDoor.start({
        host: listen.host,
        port: listen.port,
        settings,
        services,
        key,
        mintsUp: () => health.up(),
        rateLimitPerMinute: config.http.rateLimit,
        maxConnections: totalConnectionBound(openFileLimit()),
        log,
      });
      log.info('TollGate door listening', { host: listen.host, port: door.port, pubkey: key.pubkey });
      again.done();
      return { door, at };
    } catch (err) {
      const e = toSluiceError(err);
      if (e.code === 'ERR_HTTP_LISTEN') again.refused(log, 'TollGate door', e);
      else log.error('TollGate door not started', { code: e.code, reason: e.message });
      return null;
    }
  }

  async function stop(): Promise<void> {
    const was = open;
    open = null;
    if (!was) return;
    await was.door.close();
  }

  const addressOf = (config: Config): string => {
    const listen = listenOf(config);
    return listen ? `${listen.host}:${listen.port}` : '';
  };
  const keeper: PluginDoor & { probes: BackgroundPass } = {
    option: 'tollgate.listen',
    at: addressOf,
    follow(config, doorServices) {
      const step = queue.then(() => followNow(config, doorServices));
      queue = step.catch(() => undefined);
      return step;
    },
    async close() {
      again.done();
      await queue;
      await stop();
    },
    probes: health.background,
  };
  return keeper;

  async function followNow(config: Config, doorServices: DoorServices): Promise<void> {
    current = config;
    services = doorServices;
    const listen = listenOf(config);
    const at = addressOf(config) || null;
    if (at === (open?.at ?? null)) return;
    if (at === null) {
      again.done();
      await stop();
      log.info('TollGate door closed (tollgate off, or no listen address)');
      return;
    }
    if (open) {
      try {
        await open.door.moveTo(listen!.host, listen!.port);
        open.at = at;
        log.info('TollGate door moved', { host: listen!.host, port: open.door.port });
      } catch (err) {
        const e = toSluiceError(err);
        log.error('TollGate door not moved: it listens where it was', { code: e.code, reason: e.message });
      }
      return;
    }
    open = await start(config, doorServices, at);
    if (open) void health.probeNow().catch(() => undefined);
  }
}
