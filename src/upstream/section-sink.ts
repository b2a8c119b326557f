/**
 * A sink whose code is read only while its section is on (MQTT, the hook): at start, or by the reload that switches
 * it on, with no restart. Until then it hears nothing and says `disabled`, as the sink itself does while its section
 * is off, and an idle router never reads, parses or keeps its code (docs/performance.md, "Idle memory"). Code that
 * cannot be loaded is ERR_MODULE_LOAD (lazy.ts): at start the host logs it and runs without the sink; a reload
 * reports it in its reply and the next reload tries again. Once loaded, the sink itself follows every reload, off
 * and on again.
 */
import type { Config, ConfigProblem } from '../config/index.ts';
import type { SinkEvent, SinkStats, UpstreamSink } from './sink.ts';

export interface SectionSinkOptions {
  /** The sink's name, the key of its stats before it is loaded. */
  name: string;
  /** Whether the config switches the section on. */
  on: (config: Config) => boolean;
  /** Loads the sink's code and builds it for this config, not started. */
  open: (config: Config) => Promise<UpstreamSink>;
}

export class SectionSink implements UpstreamSink {
  readonly name: string;
  private sink: UpstreamSink | undefined;
  private state: 'idle' | 'running' | 'closed' = 'idle';

  constructor(
    private config: Config,
    private readonly options: SectionSinkOptions,
  ) {
    this.name = options.name;
  }

  async start(options: { atStart?: boolean } = {}): Promise<void> {
    this.state = 'running';
    if (this.options.on(this.config)) await this.load(this.config, options.atStart === true);
  }

  private async load(config: Config, atStart: boolean): Promise<void> {
    const sink = await this.options.open(config);
    // Closed while its code loaded: the daemon is stopping, it must not start now.
    if (this.isClosed()) return sink.destroy();
    try {
      await sink.start({ atStart });
    } catch (err) {
      sink.destroy();
      throw err;
    }
    if (this.isClosed()) sink.destroy();
    else this.sink = sink;
  }

  /** Read after an await: close() may have come meanwhile. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  onEvent(event: SinkEvent): void {
    this.sink?.onEvent(event);
  }

  async reload(config: Config): Promise<readonly ConfigProblem[] | void> {
    this.config = config;
    if (this.sink) return this.sink.reload?.(config);
    if (this.state === 'running' && this.options.on(config)) await this.load(config, false);
  }

  stats(): SinkStats {
    return this.sink?.stats() ?? { state: this.state === 'closed' ? 'closed' : 'disabled' };
  }

  publishVenue(body: Record<string, unknown>): boolean {
    return this.sink?.publishVenue?.(body) ?? false;
  }

  statusNow(): void {
    this.sink?.statusNow?.();
  }

  async close(): Promise<void> {
    this.state = 'closed';
    await this.sink?.close();
  }

  destroy(): void {
    this.state = 'closed';
    this.sink?.destroy();
  }
}
