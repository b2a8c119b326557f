// tier: fast
// What a bundled fast file loads as it starts (test/helpers/bundle.mjs): a file whose imports are uvu, src/ and the
// MQTT rig's plain helpers loads no package from node_modules, uvu's own kleur, diff and dequal being in the bundle
// and mqtt.js loaded by the rig's subscriber only. Each package a thread loads costs it CPU as it starts (~10 ms for
// uvu's three, in each of the tier's ~200 threads; ~0.16 s for mqtt.js). The packages a thread's files share (SHARED)
// import only each other, so that none of a file's own packages is shared through them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { SHARED } from './helpers/bundle.mjs';
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

/** The names of the packages `dir` (a package) depends on, and those its own node_modules' packages depend on. */
function dependencies(dir: string): string[] {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  const names = ['dependencies', 'peerDependencies', 'optionalDependencies'].flatMap((field) =>
    Object.keys((manifest[field] as Record<string, string> | undefined) ?? {}),
  );
  const nested = join(dir, 'node_modules');
  const inside = existsSync(nested)
    ? readdirSync(nested)
        .filter((n) => !n.startsWith('.'))
        .flatMap((n) => (n.startsWith('@') ? readdirSync(join(nested, n)).map((p) => `${n}/${p}`) : [n]))
    : [];
  return [...names, ...inside.flatMap((n) => dependencies(join(nested, n)))];
}

test("what a shared package imports is shared too: a thread's files share no package through it that is theirs", () => {
  const modules = new URL('../node_modules/', import.meta.url).pathname;
  for (const name of SHARED) {
    assert.ok(existsSync(join(modules, name, 'package.json')), `${name} is installed`);
    const outside = dependencies(join(modules, name)).filter((d) => !SHARED.includes(d));
    assert.equal(outside, [], `${name} depends on packages that are not shared`);
  }
});

test.run();
