// Builds the pay page's batch-settlement client on its own: scripts/build.mjs calls it, and the fast tests that load
// the pay page (test/http/fake-dom.ts) run this file when a fresh clone has not been built yet.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

// The pay page's batch-settlement client (src/browser/batch.ts → portal/batch.js, docs/batch-settlement.md): for the
// browser, @x402/evm's own deposit and voucher code with viem's and noble's pieces it reaches. @x402/core and zod are
// marked side-effect free: the deposit code never calls them, and esbuild then leaves out their module bodies (zod
// alone is 58 KiB).
const pureLibs = {
  name: 'pure-libs',
  setup(b) {
    b.onResolve({ filter: /^(@x402\/core|zod)(\/|$)/ }, async (a) => {
      if (a.pluginData === 'pure-libs') return undefined;
      return {
        ...(await b.resolve(a.path, { resolveDir: a.resolveDir, kind: a.kind, pluginData: 'pure-libs' })),
        sideEffects: false,
      };
    });
  },
};
export async function buildBatchClient(outfile = 'files/usr/share/sluice/portal/batch.js') {
  await build({
    entryPoints: ['src/browser/batch.ts'],
    outfile,
    bundle: true,
    format: 'iife',
    globalName: 'SluiceBatchClient',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    plugins: [pureLibs],
    logLevel: 'warning',
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildBatchClient(process.argv[2]);
