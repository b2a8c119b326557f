/**
 * Roaming within a venue (docs/roaming.md), when `main.venue` names one: the router's half of the lease protocol,
 * following the meter's billing (who is present) and publishing its claims through the MQTT sink. Restart-only
 * options; the fleet's answers need `mqtt.commands 1`.
 */
import type { Config } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { Meter } from '../meter/index.ts';
import type { SessionManager } from '../sessions/index.ts';
import { createSinks, VenueRoaming, type SinkDeps, type SinkHost, type StatusInfo } from '../upstream/index.ts';
import type { Parts } from './parts.ts';

export function openVenue(
  config: Config,
  { sessions, upstream, meter }: { sessions: SessionManager; upstream: SinkHost; meter: Pick<Meter, 'tick'> },
  log: Log,
): VenueRoaming | undefined {
  const { venue, venuePresentWindowMs: presentWindowMs } = config.main;
  if (venue === '') return undefined;
  if (!config.mqtt.enabled || !config.mqtt.commands)
    log.warn('main.venue is set but mqtt or mqtt.commands is off: the venue cannot answer this router', { venue });
  const roaming = new VenueRoaming({
    sessions,
    publish: (body) => upstream.publishVenue(body),
    settings: () => ({ venue, presentWindowMs }),
    reading: () => meter.tick(),
    log,
  });
  roaming.follow();
  return roaming;
}

/**
 * The sinks the config enables (MQTT, the hook), added to the upstream host: they hear the sessions' events and run
 * the admin commands of MQTT's command channel. First the venue's roaming (parts.venue, when main.venue names one),
 * whose claims go out through them and whose handovers their MQTT messages tell.
 */
export function addSinks(
  config: Config,
  parts: Parts,
  deps: Pick<SinkDeps, 'log' | 'recovered'>,
  daemon: { upstreamStatus(): StatusInfo; adminCommand(name: string, args: Record<string, unknown>): Promise<unknown> },
): void {
  const { sessions } = parts;
  const venue = (parts.venue = openVenue(config, parts, deps.log));
  const sinkDeps: SinkDeps = {
    ...deps,
    session: (id) => sessions.get(id),
    status: () => daemon.upstreamStatus(),
    command: (name, args) => daemon.adminCommand(name, args),
  };
  if (venue) sinkDeps.moved = (s) => venue.moved(s);
  for (const sink of createSinks(config, sinkDeps)) parts.upstream.add(sink);
}
