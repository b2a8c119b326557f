/**
 * A store that keeps state in this process only: for tests and the demo. "Durable" means it survives a new
 * SessionManager on the same instance, which is how tests model a restart.
 */
import { SluiceError } from '../errors.ts';
import { DEFAULT_RETENTION, applyRecord, copyState, emptyState, pruneState } from './store.ts';
import type { LoadResult, RetentionPolicy, SessionStore, StoreRecord, StoreState } from './store.ts';

export class MemoryStore implements SessionStore {
  private state: StoreState = emptyState();
  private readonly retention: RetentionPolicy;
  private closed = false;

  constructor(options: { retention?: Partial<RetentionPolicy> } = {}) {
    this.retention = { ...DEFAULT_RETENTION, ...options.retention };
  }

  async load(): Promise<LoadResult> {
    // A closed memory store can be loaded again: that is a restart.
    this.closed = false;
    return { ...copyState(this.state), warnings: [] };
  }

  async append(records: readonly StoreRecord[]): Promise<void> {
    if (this.closed) throw new SluiceError('ERR_STORE_CLOSED', 'session store is closed');
    // Copy through the reducer so later mutations by the caller cannot reach stored state.
    for (const record of records) applyRecord(this.state, structuredClone(record));
  }

  async compact(now: number): Promise<void> {
    pruneState(this.state, now, this.retention);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
