/**
 * The sinks built from config alone for the daemon's SinkHost (MQTT, the hook). RadiusUpstream is built apart
 * (RadiusUpstream.fromConfig): it also owns the voucher payment method, which the merchant needs first.
 */
import type { Config } from '../config/index.ts';
import { lazyPart } from '../lazy.ts';
import type { Log } from '../log.ts';
import type { PaidEvent, Session } from '../sessions/index.ts';
import type { StatusInfo } from './mqtt/messages.ts';
import { SectionSink } from './section-sink.ts';
import type { UpstreamSink } from './sink.ts';

/** Each sink's code (with the outbox it queues through), read when its section is on (section-sink.ts). */
const mqttCode = lazyPart('the MQTT upstream', () => import('./mqtt/sink.ts'));
const hookCode = lazyPart('the hook upstream', () => import('./hook/sink.ts'));

export interface SinkDeps {
  log: Log;
  /** Facts for status reports (MQTT's retained status). */
  status?: () => StatusInfo | null;
  /** Runs an admin ubus method by name (MQTT's signed command channel); resolves with its reply data. */
  command?: (name: string, args: Record<string, unknown>) => Promise<unknown>;
  /** Sessions the daemon's recovery ended (they ran out while it was down): their end is reported at start. */
  recovered?: () => { ended: readonly Session[]; payments?: readonly PaidEvent[] };
  /** A session by id, live or retained after its end (SessionManager.get). */
  session?: (id: string) => Session | null;
  /** A session's handover within its venue (roaming.md), for MQTT's session messages. */
  moved?: (session: Session) => Record<string, unknown> | null;
}

/**
 * The config's sinks, not started yet (the daemon adds them to its SinkHost). One line per upstream; each is present
 * with its section off, so a reload can switch it on.
 */
export function createSinks(config: Config, deps: SinkDeps): UpstreamSink[] {
  // The queue's directory is the start's: main.state_dir takes a restart.
  const stateDir = config.main.stateDir;
  const mqtt = new SectionSink(config, {
    name: 'mqtt',
    on: (c) => c.mqtt.enabled,
    open: async (c) =>
      new (await mqttCode()).MqttSink(c.mqtt, {
        log: deps.log,
        routerId: c.main.routerId,
        stateDir,
        ...(deps.status && { status: deps.status }),
        ...(deps.command && { command: deps.command }),
        ...(deps.recovered && { recovered: deps.recovered }),
        ...(deps.session && { session: deps.session }),
        ...(deps.moved && { moved: deps.moved }),
      }),
  });
  // The PC-sync webhook.
  const hook = new SectionSink(config, {
    name: 'hook',
    on: (c) => c.hook.enabled,
    open: async (c) =>
      new (await hookCode()).HookSink(c.hook, {
        log: deps.log,
        routerId: c.main.routerId,
        stateDir,
        ...(deps.recovered && { recovered: deps.recovered }),
        ...(deps.session && { session: deps.session }),
      }),
  });
  return [mqtt, hook];
}
