// Preloaded into the daemon by bench/leak.ts (`node --expose-gc --import …`): on SIGUSR2, a full GC, then the heap's
// live size and the process's RSS into the file named by SLUICE_LEAK_PROBE. A leak is live heap that grows; RSS alone
// also holds what V8 has not given back yet. With SLUICE_LEAK_SNAPSHOTS (a directory: `bench -- leak --snapshots DIR`)
// each probe also writes a heap snapshot there, 1.heapsnapshot, 2.heapsnapshot …, to compare what the live heap holds.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const out = process.env.SLUICE_LEAK_PROBE;
const snapshots = process.env.SLUICE_LEAK_SNAPSHOTS;
let probes = 0;
if (out && typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    globalThis.gc();
    const m = process.memoryUsage();
    if (snapshots) writeHeapSnapshot(join(snapshots, `${++probes}.heapsnapshot`));
    writeFileSync(
      out,
      JSON.stringify({
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
        rss: m.rss,
      }),
    );
  });
}
