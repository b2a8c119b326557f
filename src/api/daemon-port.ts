/**
 * What the daemon as a whole answers its own parts: the one cycle of the house, broken by an explicit port. Parts
 * built before the doors ask the whole: a plugin's admin command (a RADIUS CoA-Request's rates) and MQTT's command
 * channel run through the method table and the backend, which sell through those same plugins; MQTT's status and ubus
 * `stats` tell the figures of every part, the sinks and the LAN endpoint among them; ubus `reload` runs the reloader,
 * which moves the endpoint that serves it. The root hands the port out first and serves it once the doors are built
 * (one pass, no closure bound later); admin commands run once the daemon runs (before: ERR_SESSIONS_STATE).
 */
import { SluiceError } from '../errors.ts';
import type { BlobmsgTable } from '../ubus/index.ts';
import type { StatusInfo } from '../upstream/index.ts';
import type { CallOrigin, SluiceBackend } from './backend.ts';
import { daemonStats, upstreamStatus, type DaemonParts } from './daemon-status.ts';
import type { MethodTable } from './methods.ts';
import { invokeMethod } from './object.ts';

/** What the port answers with, once the doors are built. */
export interface DaemonWhole {
  backend: SluiceBackend;
  methods: MethodTable;
  figures: DaemonParts;
  reload(): Promise<BlobmsgTable>;
}

export class DaemonPort {
  private whole: DaemonWhole | undefined;
  private running = false;

  /** The doors are built: the port answers from now on (admin commands once the daemon runs: open). */
  serve(whole: DaemonWhole): void {
    this.whole = whole;
  }

  /** The daemon runs: admin commands are taken from now on. */
  open(): void {
    this.running = true;
  }

  private served(): DaemonWhole {
    if (!this.whole) throw new SluiceError('ERR_SESSIONS_STATE', 'sluice is still starting');
    return this.whole;
  }

  /** An admin method run for a part (MQTT's command channel, a CoA-Request's rates), checked as a ubus call is. */
  readonly command = async (name: string, args: Record<string, unknown>, origin: CallOrigin = 'mqtt') => {
    if (!this.running) throw new SluiceError('ERR_SESSIONS_STATE', 'sluice is still starting');
    const { backend, methods } = this.served();
    return (await invokeMethod(backend, name, args as BlobmsgTable, { origin, methods })).data as unknown;
  };

  /** What upstream status reports tell (MQTT's retained status); null until the doors are built. */
  readonly status = (): StatusInfo | null => (this.whole ? upstreamStatus(this.whole.figures) : null);

  /** ubus `stats`. */
  readonly stats = (): BlobmsgTable => daemonStats(this.served().figures);

  /** SIGHUP, ubus `reload`: the config read again (a bad one reported, the old one kept). */
  readonly reload = (): Promise<BlobmsgTable> => this.served().reload();
}
