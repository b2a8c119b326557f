/**
 * Hands session events to the upstream sinks: the daemon wires it with a few lines (attach to the session manager,
 * whose events include each tick's usage batch; start/reload/stats/close). A sink that throws is logged and skipped;
 * it can never stop the others, a purchase or a tick. Session events that come before every sink has started (the
 * daemon sells from its ubus object, its LAN endpoint and its payment methods' reconciling before the sinks start)
 * are held and handed over once they have: a sink that is not started yet drops what it is given.
 */
import type { Config, ConfigProblem } from '../config/index.ts';
import type { Log } from '../log.ts';
import type { UsageReport } from '../meter/index.ts';
import type { PaymentRef, Session, SessionRates } from '../sessions/index.ts';
import { toSluiceError } from '../errors.ts';
import { systemClock, type Clock } from '../time.ts';
import type {
  EscrowClosed,
  RateChangeOrigin,
  SessionFigures,
  SessionNumbers,
  SinkEvent,
  SinkStats,
  UpstreamSink,
} from './sink.ts';

/** What the host needs from the session manager. */
export interface SessionSource {
  on(event: 'started', listener: (s: Session) => void): () => void;
  on(event: 'topup', listener: (s: Session, payment: PaymentRef) => void): () => void;
  /** The session's end record is durable (the manager's `end-written`): only then is an end announced upstream. */
  on(event: 'end-written', listener: (s: Session) => void): () => void;
  /**
   * What the meter billed, once the journal holds it (the manager's `usage-written`): the router's own records have
   * every byte and second upstream is told, through a kill -9 or a power cut.
   */
  on(
    event: 'usage-written',
    listener: (batch: readonly UsageReport[], at: number, figures: ReadonlyMap<string, SessionNumbers>) => void,
  ): () => void;
  figuresOf(id: string, now?: number): SessionFigures | null;
  figuresInto(id: string, now: number, out: SessionNumbers, slot?: number): boolean;
}

/** Session events held before the sinks start: far more than a start's few seconds of sales. */
const MAX_EARLY_EVENTS = 10_000;

export interface SinkHostOptions {
  log: Log;
  clock?: Clock;
}

export class SinkHost {
  private readonly sinks: UpstreamSink[] = [];
  private readonly clock: Clock;
  private source: SessionSource | undefined;
  private readonly detach: Array<() => void> = [];
  private state: 'idle' | 'running' | 'closing' | 'closed' = 'idle';
  /** Session events before start() finished (usage reports are not held: their figures are of their moment). */
  private early: SinkEvent[] | null = [];
  /** The figures the usage batch being handed out was written with (null: read live at usageAt), for figuresInto. */
  private usageFigures: ReadonlyMap<string, SessionNumbers> | null = null;
  private usageAt = 0;
  /**
   * The usage event's figuresInto: one function for every tick, not a new closure per tick. A report's row loop calls
   * it once per row and V8 inlines a call whose target stays the same; a new target each tick deoptimized the loop
   * (at 10k sessions the ticks after the first few ran ~1 ms slower until V8 gave up inlining it).
   */
  private readonly figuresInto = (id: string, out: SessionNumbers, slot?: number): boolean => {
    if (this.usageFigures === null)
      return this.source !== undefined && this.source.figuresInto(id, this.usageAt, out, slot);
    const f = this.usageFigures.get(id);
    if (f === undefined) return false;
    out.user = f.user;
    out.allotment = f.allotment;
    out.used = f.used;
    out.remaining = f.remaining;
    out.bytes = f.bytes;
    out.state = f.state;
    return true;
  };

  constructor(private readonly options: SinkHostOptions) {
    this.clock = options.clock ?? systemClock;
  }

  get size(): number {
    return this.sinks.length;
  }

  /** Whether a sink of that name runs (was added and started). */
  has(name: string): boolean {
    return this.sinks.some((s) => s.name === name);
  }

  add(sink: UpstreamSink): void {
    this.sinks.push(sink);
  }

  /**
   * A sink a plugin brings (PluginHost.sink): added, and started at once when the host runs already (a reload switched
   * its plugin on); one that cannot start is logged and left out, as at the host's start.
   */
  async join(sink: UpstreamSink): Promise<void> {
    this.add(sink);
    if (this.state === 'running') await this.startEach([sink], false);
  }

  /** A sink whose plugin a reload switched off: it hears no more events and is drained (its outbox stays on flash). */
  async leave(sink: UpstreamSink): Promise<void> {
    const at = this.sinks.indexOf(sink);
    if (at < 0) return;
    this.sinks.splice(at, 1);
    try {
      await sink.close();
    } catch (err) {
      this.options.log.warn('upstream sink close failed', { sink: sink.name, reason: toSluiceError(err).message });
    }
  }

  /** Subscribes to the manager's session events. */
  attach(source: SessionSource): void {
    this.source = source;
    this.detach.push(
      source.on('started', (session) => this.emit({ type: 'started', at: this.clock.now(), session })),
      source.on('topup', (session, payment) => this.emit({ type: 'topup', at: this.clock.now(), session, payment })),
      // Not at `ended`: a RADIUS Stop, an MQTT or hook report of an end that a crash then undoes (the session back
      // ACTIVE after the restart) would be a lie upstream billing acts on.
      source.on('end-written', (session) => this.emit({ type: 'ended', at: this.clock.now(), session })),
      source.on('usage-written', (batch, at, figures) => this.usage(batch, at, figures)),
    );
  }

  /** An escrow session closed on chain (the x402-session method's close). */
  escrowClosed(session: Session | null, mac: string, escrow: EscrowClosed): void {
    this.emit({ type: 'escrow-closed', at: this.clock.now(), session, mac, escrow });
  }

  /**
   * A session's new speed tier went through the change path (the daemon backend's changeRates, after the kernel has
   * it): not the session manager's `rates` event, which comes before the kernel and does not know who asked.
   */
  ratesChanged(session: Session, previous: SessionRates | null, by: RateChangeOrigin): void {
    this.emit({ type: 'rates', at: this.clock.now(), session, previous, by });
  }

  /**
   * Usage on flash (the manager's `usage-written`, once attached), with the figures written at `at`; without them
   * (benches) the source's live figures at `at`.
   */
  usage(
    batch: readonly UsageReport[],
    at = this.clock.now(),
    figures: ReadonlyMap<string, SessionNumbers> | null = null,
  ): void {
    if (batch.length === 0 || this.sinks.length === 0 || !this.source) return;
    const source = this.source;
    this.usageFigures = figures;
    this.usageAt = at;
    this.emit({
      type: 'usage',
      at,
      usage: batch,
      figures: (id) => source.figuresOf(id, at),
      figuresInto: this.figuresInto,
    });
  }

  private emit(event: SinkEvent): void {
    if (this.state === 'closed') return;
    if (this.early !== null) {
      if (event.type === 'usage') return;
      if (this.early.length < MAX_EARLY_EVENTS) this.early.push(event);
      else this.options.log.warn('upstream event not held before the sinks start', { event: event.type });
      return;
    }
    for (const sink of this.sinks) {
      try {
        sink.onEvent(event);
      } catch (err) {
        const e = toSluiceError(err);
        this.options.log.warn('upstream sink failed on an event', {
          sink: sink.name,
          event: event.type,
          code: e.code,
          reason: e.message,
        });
      }
    }
  }

  /** Starts every sink; one that cannot start is logged and left out (the daemon runs without it). */
  async start(): Promise<void> {
    this.state = 'running';
    await this.startEach([...this.sinks], true);
    const held = this.early ?? [];
    this.early = null;
    for (const event of held) this.emit(event);
  }

  private async startEach(sinks: readonly UpstreamSink[], atStart: boolean): Promise<void> {
    const failed: UpstreamSink[] = [];
    for (const sink of sinks) {
      try {
        await sink.start({ atStart });
        // A sink kept for a reload to switch on (mqtt with `enabled 0`) says so instead of claiming to run.
        if (sink.stats()['state'] === 'disabled') this.options.log.debug('upstream sink disabled', { sink: sink.name });
        else this.options.log.info('upstream sink started', { sink: sink.name });
      } catch (err) {
        const e = toSluiceError(err);
        this.options.log.error('upstream sink cannot start', { sink: sink.name, code: e.code, reason: e.message });
        failed.push(sink);
      }
    }
    for (const sink of failed) {
      this.sinks.splice(this.sinks.indexOf(sink), 1);
      sink.destroy();
    }
  }

  /** Hands the new config to every sink; returns what they could not apply (for the reload's reply). */
  async reload(config: Config): Promise<ConfigProblem[]> {
    const problems: ConfigProblem[] = [];
    for (const sink of this.sinks) {
      try {
        problems.push(...((await sink.reload?.(config)) ?? []));
      } catch (err) {
        const e = toSluiceError(err);
        this.options.log.warn('upstream sink reload failed', { sink: sink.name, code: e.code, reason: e.message });
        problems.push({
          path: sink.name,
          section: sink.name,
          option: '',
          reason: `reload failed (${e.code}): ${e.message}`,
        });
      }
    }
    return problems;
  }

  /** A venue claim (roaming.md) through the first sink that can send it now; false when none can. */
  publishVenue(body: Record<string, unknown>): boolean {
    return this.sinks.some((sink) => sink.publishVenue?.(body) === true);
  }

  /** Every sink's status now (the venue lease's renewal round): those that publish one. */
  statusNow(): void {
    for (const sink of this.sinks) sink.statusNow?.();
  }

  stats(): Record<string, SinkStats> {
    const out: Record<string, SinkStats> = {};
    for (const sink of this.sinks) {
      try {
        out[sink.name] = sink.stats();
      } catch (err) {
        out[sink.name] = { error: toSluiceError(err).message };
      }
    }
    return out;
  }

  /** Detaches, then drains every sink in parallel. */
  async close(): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    for (const d of this.detach.splice(0)) d();
    await Promise.all(
      this.sinks.map(async (sink) => {
        try {
          await sink.close();
        } catch (err) {
          this.options.log.warn('upstream sink close failed', { sink: sink.name, reason: toSluiceError(err).message });
        }
      }),
    );
    this.state = 'closed';
  }
}
