/**
 * The sinks built from config alone for the daemon's SinkHost (MQTT, the hook). RadiusUpstream is built apart
 * (RadiusUpstream.fromConfig): it also owns the voucher payment method, which the merchant needs first.
 */
import type { Config } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { PaidEvent, Session } from '../sessions/index.ts';
import type { StatusInfo } from './mqtt/messages.ts';
import { MqttSink } from './mqtt/sink.ts';
import { HookSink } from './hook/sink.ts';
import type { UpstreamSink } from './sink.ts';

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

/** The sinks the config enables, not started yet (the daemon adds them to its SinkHost). One line per upstream. */
export function createSinks(config: Config, deps: SinkDeps): UpstreamSink[] {
  const sinks: UpstreamSink[] = [];
  // Always present (idle while disabled), so a reload can switch it on.
  sinks.push(
    new MqttSink(config.mqtt, {
      log: deps.log,
      routerId: config.main.routerId,
      stateDir: config.main.stateDir,
      ...(deps.status && { status: deps.status }),
      ...(deps.command && { command: deps.command }),
      ...(deps.recovered && { recovered: deps.recovered }),
      ...(deps.session && { session: deps.session }),
      ...(deps.moved && { moved: deps.moved }),
    }),
  );
  // Always present too (idle while disabled): the PC-sync webhook.
  sinks.push(
    new HookSink(config.hook, {
      log: deps.log,
      routerId: config.main.routerId,
      stateDir: config.main.stateDir,
      ...(deps.recovered && { recovered: deps.recovered }),
      ...(deps.session && { session: deps.session }),
    }),
  );
  return sinks;
}
