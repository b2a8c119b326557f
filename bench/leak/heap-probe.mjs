// Preloaded into the daemon by bench/leak.ts (`node --expose-gc --import …`): on SIGUSR2, where the resident memory
// is (read first, as it stands: V8's spaces, malloc's main heap, the rest), then a full GC, the heap's live size and
// the process's RSS, into the file named by SLUICE_LEAK_PROBE. A leak is live heap that grows; RSS alone also holds
// what V8 and malloc have not given back yet, and the split says which. With SLUICE_LEAK_SNAPSHOTS (a directory:
// `bench -- leak --snapshots DIR`) each probe also writes a heap snapshot there, 1.heapsnapshot, 2.heapsnapshot …, to
// compare what the live heap holds.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';

const out = process.env.SLUICE_LEAK_PROBE;
const snapshots = process.env.SLUICE_LEAK_SNAPSHOTS;
let probes = 0;

/** Resident kB of the brk heap (malloc's main arena) and of all anonymous mappings, from /proc/self/smaps. */
function residentSplit() {
  let name = '';
  let brkKb = 0;
  let anonKb = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) name = head[1];
    else if (line.startsWith('Rss:')) {
      const kb = Number(line.split(/\s+/)[1]);
      if (name === '[heap]') brkKb += kb;
      if (name === '' || name === '[heap]' || name.startsWith('[stack')) anonKb += kb;
    }
  }
  return { brkKb, anonKb };
}

if (out && typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    // As RSS saw it: V8's spaces as they are, before the GC below tidies them.
    const spaces = Object.fromEntries(
      getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.physical_space_size / 1024)]),
    );
    const split = residentSplit();
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
        before: { spacesKb: spaces, ...split },
      }),
    );
  });
}
