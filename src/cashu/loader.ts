/**
 * lib.ts (cashu-ts and noble's secp256k1), loaded when first needed, as x402/evm-loader.ts loads viem: the
 * tollgate section's door (payments/cashu/nostr/key.ts's openRouterKey) and its `cashu` method (CashuMethod.open) await
 * loadCashuLib() before anything of theirs runs; what they call afterwards (decoding a token, blinding, signing an
 * event) is synchronous and goes through cashuLib(). A chunk that cannot be loaded is ERR_MODULE_LOAD (src/lazy.ts):
 * the door or the method is left out, the rest of the daemon runs.
 */
import { createRequire } from 'node:module';
import { SluiceError } from '../errors.ts';
import { lazyPart } from '../lazy.ts';

export type CashuLib = typeof import('./lib.ts');

let loaded: CashuLib | undefined;

export const loadCashuLib: () => Promise<CashuLib> = lazyPart(
  'cashu-ts and secp256k1 (TollGate and the cashu method)',
  async () => (loaded ??= await import('./lib.ts')),
);

/** cashu-ts and schnorr, loaded. */
export function cashuLib(): CashuLib {
  if (loaded !== undefined) return loaded;
  // Only code run from the sources gets here without loadCashuLib() (unit tests and benches under tsx that decode a
  // token or sign an event without the daemon's open): node_modules is there, and Node 20 requires these ESM packages
  // synchronously. On a router there is no node_modules: a path that forgot the load is this error, not a crash.
  try {
    const require = createRequire(import.meta.url);
    return (loaded = {
      ...require('@cashu/cashu-ts'),
      ...require('@noble/curves/secp256k1.js'),
      ...require('@noble/curves/abstract/curve.js'),
    } as CashuLib);
  } catch (err) {
    throw new SluiceError(
      'ERR_MODULE_LOAD',
      `cashu-ts is used before it was loaded (${err instanceof Error ? err.message : String(err)})`,
      {
        cause: err,
        details: { part: 'cashu-ts' },
      },
    );
  }
}
