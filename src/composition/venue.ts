/**
 * Roaming within a venue (docs/roaming.md), when `main.venue` names one: the router's half of the lease protocol,
 * following the meter's billing (who is present) and publishing its claims through the MQTT sink. Restart-only
 * options; the fleet's answers need `mqtt.commands 1`.
 */
import type { Config } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { SessionManager } from '../sessions/index.ts';
import { VenueRoaming, type SinkHost } from '../upstream/index.ts';

export function openVenue(
  config: Config,
  sessions: SessionManager,
  upstream: SinkHost,
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
    log,
  });
  roaming.follow();
  return roaming;
}
