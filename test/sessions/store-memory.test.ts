// tier: fast
import { MemoryStore } from '../../src/sessions/memory-store.ts';
import type { RetentionPolicy } from '../../src/sessions/store.ts';
import { storeSuite } from './store-suite.ts';

storeSuite('MemoryStore', async () => {
  // A memory store "survives a restart" by being the same instance; retention is fixed at construction, so the
  // backing swaps the instance (with its state) when a test asks for another policy.
  let store = new MemoryStore();
  let policy: Partial<RetentionPolicy> | undefined;
  return {
    open(retention) {
      if (retention && retention !== policy) {
        policy = retention;
        const next = new MemoryStore({ retention });
        Object.assign(next, { state: (store as unknown as { state: unknown }).state });
        store = next;
      }
      return store;
    },
    async cleanup() {},
  };
});
