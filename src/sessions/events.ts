/**
 * A small typed listener set. Each listener hears each event once; a throwing listener is reported through
 * `onListenerError` and cannot stop the others or the caller (a broken sink must not block ending a session).
 */
export type Listener<Args extends unknown[]> = (...args: Args) => void;

export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly listeners: { [K in keyof Events]?: Set<Listener<Events[K]>> } = {};

  constructor(private readonly onListenerError: (err: unknown, event: keyof Events) => void) {}

  /** Returns the function that removes the listener. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const set = (this.listeners[event] ??= new Set());
    set.add(listener);
    return () => set.delete(listener);
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners[event]?.delete(listener);
  }

  /** Whether anyone listens for `event` (a watch that only feeds it need not run otherwise). */
  listens(event: keyof Events): boolean {
    return (this.listeners[event]?.size ?? 0) > 0;
  }

  emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const set = this.listeners[event];
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }
}
