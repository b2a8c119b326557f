/** What the MQTT sink is built with (sink.ts). */
import type { Log } from '../../log.ts';
import type { PaidEvent, Session } from '../../sessions/index.ts';
import type { Clock, Timers } from '../../time.ts';
import type { StatusInfo } from './messages.ts';

export interface MqttSinkDeps {
  log: Log;
  routerId: string;
  /** `main.state_dir`: the queue lives in `<state_dir>/mqtt-outbox` unless mqtt.queue_dir says otherwise. */
  stateDir: string;
  /** What the retained status message tells (sessions, pricing, version, uptime). */
  status?: () => StatusInfo | null;
  /** Runs an admin command (terminate, grant) like the ubus method of that name; resolves with its reply. */
  command?: (name: string, args: Record<string, unknown>) => Promise<unknown>;
  clock?: Clock;
  /**
   * All of the sink's timers (a test's fake time). Default: the reconnect, status and queue timers unref'd
   * (backgroundTimers: the broker's socket keeps the process alive, not a pause), close()'s waits plain
   * (systemTimers: its caller awaits them).
   */
  timers?: Timers;
  /**
   * The pause before a reconnect, and before a publish the broker refused is retried: doubling from minMs to maxMs,
   * ±20 % jitter. Default 1 s … 60 s.
   */
  backoff?: { minMs: number; maxMs: number };
  /** How long close() waits for in-flight acknowledgements and the goodbye status. Default 2000. */
  drainMs?: number;
  /** Sessions the daemon's recovery ended (they ran out while it was down): their `ended` message is due. */
  recovered?: () => { ended: readonly Session[]; payments?: readonly PaidEvent[] };
  /** A session the session manager still knows (live or retained), for how long an `ended` mark is kept. */
  session?: (id: string) => Session | null;
  /** A session's handover within its venue, for its `started`/`ended` message (roaming.md): null when none. */
  moved?: (session: Session) => Record<string, unknown> | null;
}
