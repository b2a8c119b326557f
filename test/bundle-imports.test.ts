// tier: fast
// What a bundled fast file loads as it starts (test/helpers/bundle.mjs): a file whose imports are uvu, src/ and the
// MQTT rig's plain helpers loads no package from node_modules, uvu's own kleur, diff and dequal being in the bundle
// and mqtt.js loaded by the rig's subscriber only. Each package a thread loads costs it CPU as it starts (~10 ms for
// uvu's three, in each of the tier's ~200 threads; ~0.16 s for mqtt.js).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { normalizeMac } from '../src/mac.ts';
import { rows } from './upstream/mqtt-rig.ts';

/** The file V8 runs this module from: the bundle's entry when bundled, else the source. */
function runningFrom(): string {
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = (_, sites) => sites;
  const sites = new Error().stack as unknown as NodeJS.CallSite[];
  Error.prepareStackTrace = prepare;
  return sites[0]!.getFileName() ?? '';
}

/** The bare specifiers (packages, node: builtins apart) of `entry` and every module it imports statically. */
function packagesLoaded(entry: string): string[] {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const queue = [entry];
  for (let path = queue.pop(); path !== undefined; path = queue.pop()) {
    if (seen.has(path)) continue;
    seen.add(path);
    const source = readFileSync(path, 'utf8');
    // A static import or re-export: `import … from "x"`, `import "x"`, `export … from "x"` (esbuild's output).
    for (const [, specifier] of source.matchAll(/(?:^|\n)\s*(?:import|export)\s*(?:[^;'"]*?\sfrom\s*)?"([^"]+)"/g)) {
      if (specifier!.startsWith('.')) queue.push(resolve(dirname(path), specifier!));
      else if (!specifier!.startsWith('node:')) packages.add(specifier!);
    }
  }
  return [...packages];
}

test("a bundled file whose imports are uvu, src/ and the MQTT rig's rows() loads no package as it starts", () => {
  assert.is(normalizeMac('02:00:00:00:00:01'), '02:00:00:00:00:01');
  assert.type(rows, 'function');
  const entry = runningFrom().replace(/^file:\/\//, '');
  if (!entry.includes('/.cache/sluice-test/')) return; // from the sources (tsx): no bundle
  assert.equal(packagesLoaded(entry), []);
});

test.run();
