// Bundles the daemon/CLI and the usage worker into dist/ with esbuild: no node_modules on the router.
import { build } from 'esbuild';
import { statSync, mkdirSync, chmodSync } from 'node:fs';

mkdirSync('dist', { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  legalComments: 'none',
  minifySyntax: true,
  minifyWhitespace: true,
  sourcemap: false,
  // msgpackr-extract is an optional native accelerator; msgpackr falls back to pure JS without it.
  external: ['msgpackr-extract'],
  // ESM bundles of CommonJS deps need require(); give them one.
  banner: { js: "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);" },
  logLevel: 'warning',
};

await build({ ...common, entryPoints: ['src/main.ts'], outfile: 'dist/sluice.mjs',
  banner: { js: '#!/usr/bin/env node\n' + common.banner.js } });
await build({ ...common, entryPoints: ['workers/usage.ts'], outfile: 'dist/usage-worker.mjs' });
chmodSync('dist/sluice.mjs', 0o755);
for (const file of ['dist/sluice.mjs', 'dist/usage-worker.mjs']) {
  console.log(`${file.padEnd(24)} ${(statSync(file).size / 1024).toFixed(1).padStart(8)} KiB`);
}
