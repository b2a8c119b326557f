/**
 * viem — EVM hashing and signature recovery — is loaded when first needed, not with the daemon: with noble's curves
 * it is ~2 MB of resident memory that an idle router does not use (docs/performance.md, "Idle memory"). In the bundle
 * evm.ts is a chunk of its own (scripts/build.mjs). Signature recovery is async and awaits loadEvm(); the few
 * synchronous hashes (batch-settlement channel ids and digests, upto's digest, the escrow terms nonce) call evm(),
 * made safe in the daemon by the methods that use them awaiting loadEvm() when they open
 * (payments/lazy-methods.ts). A chunk that cannot be loaded is ERR_MODULE_LOAD (src/lazy.ts).
 */
import { createRequire } from 'node:module';
import { SluiceError } from '../errors.ts';
import { lazyPart } from '../lazy.ts';

export type Evm = typeof import('./evm.ts');

let loaded: Evm | undefined;

export const loadEvm: () => Promise<Evm> = lazyPart(
  'viem (EVM hashes and signatures)',
  async () => (loaded ??= await import('./evm.ts')),
);

/** viem, loaded: for the synchronous hashes. */
export function evm(): Evm {
  if (loaded !== undefined) return loaded;
  // Only code run from the sources reaches this without loadEvm() (unit tests and benches under tsx, which build a
  // method without the daemon's open): node_modules is there and viem's CommonJS build loads synchronously. On a
  // router there is no node_modules: a path that forgot loadEvm() is this error, not a crash.
  try {
    const require = createRequire(import.meta.url);
    return (loaded = { ...require('viem/utils'), ...require('viem/accounts') } as Evm);
  } catch (err) {
    throw new SluiceError(
      'ERR_MODULE_LOAD',
      `viem is used before it was loaded (${err instanceof Error ? err.message : String(err)})`,
      {
        cause: err,
        details: { part: 'viem' },
      },
    );
  }
}
