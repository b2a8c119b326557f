/**
 * One plugin of the list as its host holds it (plugin-host.ts runs the list): what it registered before any plugin
 * opened, its opened part (null: off, or left out as damaged: method-state.ts), and what it registered through its
 * host when it opened — its doors, sinks, session listeners, figures and background passes — opened, reconciled,
 * started and closed together, so none outlives the plugin.
 */
import type { AnyErrorCode } from '../errors.ts';
import type { Log } from '../log.ts';
import type { SessionManager } from '../sessions/index.ts';
import type { UpstreamSink } from '../upstream/index.ts';
import { unlessStateDamaged } from './method-state.ts';
import type { BackgroundPass, PaymentPart, PaymentPlugin, PluginDoor, PluginHost, RegisteredPlugin } from './plugin.ts';
import { reconcileWithin } from './reconcile-within.ts';

/** What a plugin's host holds but the registrars each plugin gets its own of. */
export type HostBase = Omit<PluginHost, 'door' | 'sink' | 'onSession' | 'stats' | 'background'>;

export class OpenedPlugin {
  /** Its switch is on (or it has none). */
  on = false;
  part: PaymentPart | null = null;
  readonly doors: PluginDoor[] = [];
  readonly sinks: UpstreamSink[] = [];
  /** Its figures for ubus `stats` (PluginHost.stats). */
  figures: (() => object) | undefined;
  /** The removals of the session listeners it registered (PluginHost.onSession). */
  private readonly listening: Array<() => void> = [];
  /** Its background passes (PluginHost.background); `passesRun`: started, not stopped since. */
  private readonly passes: BackgroundPass[] = [];
  private passesRun = false;
  /** Its reconcile's end (done or failed), once it was asked; `reconcileEnded` once that came. */
  private reconcileEnd: Promise<void> | null = null;
  private reconcileEnded = false;

  constructor(readonly registered: RegisteredPlugin) {}

  get plugin(): PaymentPlugin {
    return this.registered.plugin;
  }

  /**
   * Opens it with its own registrars on `base` (a damaged state file, any method's `damaged` code, or unloadable code:
   * null, logged, and what it registered before it threw dropped).
   */
  async open(base: HostBase, damaged: readonly AnyErrorCode[], log: Log): Promise<PaymentPart | null> {
    const host: PluginHost = {
      ...base,
      door: (door) => void this.doors.push(door),
      sink: (sink) => void this.sinks.push(sink),
      onSession: ((event: never, listener: never) => {
        const off = base.sessions.on(event, listener);
        this.listening.push(off);
        return off;
      }) as SessionManager['on'],
      stats: (figures) => void (this.figures = figures),
      background: (pass) => void this.passes.push(pass),
    };
    this.part = await unlessStateDamaged(this.plugin.name, () => this.plugin.open(host), damaged, log);
    if (!this.part) {
      this.stopListening();
      this.passes.splice(0);
    }
    return this.part;
  }

  /**
   * Its reconcile asked, within the start's bounded wait (the rest goes on in the background): its end is kept, for
   * the passes that start only after it (BackgroundPass.afterReconcile).
   */
  async reconcile(log: Log): Promise<void> {
    const part = this.part;
    if (!part) return;
    const work = part.reconcile?.();
    this.reconcileEnded = work === undefined;
    const ended = (): void => void (this.reconcileEnded = true);
    this.reconcileEnd = work === undefined ? null : work.then(ended, ended);
    await reconcileWithin(this.plugin.name, work, log);
    part.reconciled?.();
  }

  /**
   * Its background passes started (once the daemon runs; one that waits for the reconcile once that has ended, unless
   * the plugin closed meanwhile), then its start hook.
   */
  start(): void {
    if (!this.part) return;
    if (!this.passesRun) {
      this.passesRun = true;
      for (const pass of this.passes) {
        if (!pass.afterReconcile || this.reconcileEnded || !this.reconcileEnd) pass.start();
        else void this.reconcileEnd.then(() => this.passesRun && this.passes.includes(pass) && pass.start());
      }
    }
    this.part.start?.();
  }

  /**
   * Closes it: its doors, its session listeners, its background passes (a pass's stop that returns a promise is
   * awaited), then its close hook. `whole` (a reload switched off a plugin with sinks, which the caller drained): none
   * of it is kept, and it opens anew when switched back on.
   */
  async close(whole = false): Promise<void> {
    for (const door of whole ? this.doors.splice(0) : this.doors) await door.close();
    this.stopListening();
    const passes = this.passes.splice(0);
    this.passesRun = false;
    for (const pass of passes) await pass.stop();
    await this.part?.close?.();
    if (whole) this.part = null;
  }

  /** The session listeners it registered, removed (it closed, or did not open). */
  private stopListening(): void {
    for (const off of this.listening.splice(0)) off();
    this.figures = undefined;
  }
}
