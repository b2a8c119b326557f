/** Shared setup for manager tests: fake time and a store that counts (and can hold back) appends. */
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import { SessionManager } from '../../src/sessions/manager.ts';
import type { SessionManagerOptions } from '../../src/sessions/manager-types.ts';
import type { PaymentRef } from '../../src/sessions/model.ts';
import type { LoadResult, SessionStore, StoreRecord } from '../../src/sessions/store.ts';
import { FakeTime } from './fake-time.ts';

export class CountingStore implements SessionStore {
  appends: StoreRecord[][] = [];
  /** When set, appends wait for `release()`. */
  hold = false;
  private held: Array<() => void> = [];

  constructor(readonly inner: SessionStore = new MemoryStore()) {}

  count(type?: StoreRecord['t']): number {
    return type === undefined
      ? this.appends.length
      : this.appends.filter((batch) => batch.some((r) => r.t === type)).length;
  }

  release(): void {
    this.hold = false;
    for (const go of this.held.splice(0)) go();
  }

  load(): Promise<LoadResult> {
    return this.inner.load();
  }

  async append(records: readonly StoreRecord[]): Promise<void> {
    this.appends.push([...records]);
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    return this.inner.append(records);
  }

  compact(now: number): Promise<void> {
    return this.inner.compact(now);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export async function setup(options: Partial<SessionManagerOptions> & { time?: FakeTime; store?: CountingStore } = {}) {
  const time = options.time ?? new FakeTime();
  const store = options.store ?? new CountingStore();
  const manager = new SessionManager({ checkpointIntervalMs: 300_000, ...options, store, clock: time, timers: time });
  const events = { started: [] as string[], topup: [] as string[], ended: [] as string[], warning: [] as string[] };
  manager.on('started', (s) => events.started.push(s.id));
  manager.on('topup', (s) => events.topup.push(s.id));
  manager.on('ended', (s) => events.ended.push(s.id));
  manager.on('warning', (e) => events.warning.push(e.code));
  const recovery = await manager.recover();
  return { time, store, manager, events, recovery };
}

let refs = 0;
export function payment(reference = `pay-${++refs}`, at = 0): PaymentRef {
  return { method: 'test', reference, amount: 1000n, asset: 'USDC', at };
}

export function mac(n: number): string {
  return `02:00:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
}

/**
 * Bills bytes by MAC, as a meter tick would: each MAC's live session (or its latest ended one, which gets nothing) is
 * looked up, then all entries go through the one usage path, SessionManager.applyUsage (by session id, with each
 * session's slot as the meter passes it). A MAC with no session at all gets an id no session has.
 */
export function useBytes(
  manager: Pick<SessionManager, 'byMac' | 'applyUsage' | 'slotOf'>,
  deltas: ReadonlyArray<readonly [mac: string, bytes: number]>,
) {
  const ids = deltas.map(([m]) => manager.byMac(m)?.id ?? '');
  return manager.applyUsage(
    ids,
    deltas.map(([, bytes]) => bytes),
    deltas.length,
    undefined,
    undefined,
    Int32Array.from(ids, (id) => manager.slotOf(id)),
  );
}
