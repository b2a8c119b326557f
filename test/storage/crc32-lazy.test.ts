// tier: daemon
/**
 * crc32 loads zlib only for a long input: an idle router's journal records (short) never load it (~1.5 MB of RSS),
 * a tick's outbox batch (long) does, once. Read in the bundle the router runs (dist/sluice.mjs has no zlib import
 * of its own otherwise), from Node's own list of the built-ins it loaded.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';

test(
  'short inputs take the table and leave zlib unloaded; ' + 'the first long one loads it; the values are the same',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-crc-'));
    try {
      const out = join(dir, 'crc.mjs');
      const crc32Module = JSON.stringify(new URL('../../src/storage/crc32.ts', import.meta.url).pathname);
      await esbuild.build({
        stdin: {
          contents: `import { crc32, crc32Table } from ${crc32Module};
const zlibLoaded = () => process.moduleLoadList.some((m) => m === 'NativeModule zlib');
const short = 'x'.repeat(300), long = 'y'.repeat(100000);
const r = { short: crc32(short) === crc32Table(short), afterShort: zlibLoaded() };
r.long = crc32(long) === crc32Table(long);
r.continued = crc32(long, crc32(short)) === crc32Table(short + long);
r.afterLong = zlibLoaded();
console.log(JSON.stringify(r));`,
          resolveDir: dir,
          loader: 'ts',
        },
        bundle: true,
        platform: 'node',
        format: 'esm',
        outfile: out,
        logLevel: 'silent',
      });
      const r = JSON.parse(execFileSync(process.execPath, [out], { encoding: 'utf8' })) as Record<string, boolean>;
      assert.equal(r, { short: true, afterShort: false, long: true, continued: true, afterLong: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
