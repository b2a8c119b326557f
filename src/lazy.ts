/**
 * Code the daemon loads when it is first used, not at start: a payment method the config leaves off, viem's
 * signature code (docs/performance.md, "Idle memory"). In the bundle each such `import()` is a chunk next to
 * sluice.mjs (scripts/build.mjs), so an idle router never reads, parses or keeps it. A chunk that cannot be loaded (a
 * package installed without it, a file removed, a module that throws as it loads) is ERR_MODULE_LOAD naming the part,
 * thrown where the part is used — a purchase refused with that code, a method left out at start — and not cached:
 * the next use tries again.
 */
import { SluiceError } from './errors.ts';

export function lazyPart<T>(part: string, load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => (loading ??= load().catch((err: unknown) => {
    loading = undefined;
    const why = err instanceof Error ? err.message : String(err);
    throw new SluiceError('ERR_MODULE_LOAD', `${part}: its code could not be loaded (${why}); reinstall the sluice package`, {
      cause: err, details: { part },
    });
  }));
}
