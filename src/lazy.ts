/**
 * Code the daemon loads when it is first used, not at start: viem (x402/evm-loader.ts), mqtt.js (the MQTT sink) and
 * cashu-ts with secp256k1 (cashu/loader.ts: the tollgate section), in the package files of their own next to
 * sluice.mjs (evm.mjs, mqtt.mjs, cashu.mjs: scripts/build.mjs), and sluice's own code for a payment method, RADIUS,
 * the MQTT sink or the hook when the config switches it on (its chunk, sluice-*.mjs: upstream/section-sink.ts for the
 * sinks, on by a reload with no restart), so an idle router never reads, parses or keeps them
 * (docs/performance.md, "Idle memory"). A file that cannot be loaded (a package
 * installed without it, a file removed, a module that throws as it loads) is ERR_MODULE_LOAD naming the part, thrown
 * where the part is used — a purchase refused with that code, a method or sink left out at start — and not kept:
 * the next use tries again.
 */
import { SluiceError } from './errors.ts';

export function lazyPart<T>(part: string, load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () =>
    (loading ??= load().catch((err: unknown) => {
      loading = undefined;
      const why = err instanceof Error ? err.message : String(err);
      throw new SluiceError(
        'ERR_MODULE_LOAD',
        `${part}: its code could not be loaded (${why}); reinstall the sluice package`,
        {
          cause: err,
          details: { part },
        },
      );
    }));
}
