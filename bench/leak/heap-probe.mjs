// Preloaded into the daemon by bench/leak.ts (`node --expose-gc --import …`): on SIGUSR2, where the resident memory
// is (read first, as it stands: V8's spaces, malloc's main heap and the other threads' arenas, the rest), then a
// full GC, the heap's live size and the process's RSS, into the file named by SLUICE_LEAK_PROBE. A leak is live heap
// that grows; RSS alone also holds what V8 and malloc have not given back yet, and the split says which. With
// SLUICE_LEAK_SNAPSHOTS (a directory: `bench -- leak --snapshots DIR`) each probe also writes a heap snapshot there,
// 1.heapsnapshot, 2.heapsnapshot …, to compare what the live heap holds.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';

const out = process.env.SLUICE_LEAK_PROBE;
const snapshots = process.env.SLUICE_LEAK_SNAPSHOTS;
let probes = 0;

/** glibc's arenas other than the main one are heaps reserved at addresses aligned to their maximum size. */
const HEAP_MAX = 64n << 20n;

/**
 * Resident kB of the brk heap (malloc's main arena), of the other threads' malloc arenas and of all anonymous
 * mappings, from /proc/self/smaps. An arena (glibc's non-main heap) is a read-write mapping at a 64 MiB-aligned address
 * followed by the rest of its 64 MiB reserved without access.
 */
function residentSplit() {
  const maps = [];
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head)
      maps.push({ start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perm: head[3], name: head[4], kb: 0 });
    else if (line.startsWith('Rss:') && maps.length > 0) maps[maps.length - 1].kb = Number(line.split(/\s+/)[1]);
  }
  let brkKb = 0;
  let arenaKb = 0;
  let anonKb = 0;
  maps.forEach((m, i) => {
    if (m.name === '[heap]') brkKb += m.kb;
    if (m.name === '' || m.name === '[heap]' || m.name.startsWith('[stack')) anonKb += m.kb;
    const next = maps[i + 1];
    const reserved = next && next.perm === '---p' && next.start === m.end && next.end === m.start + HEAP_MAX;
    const whole = m.end === m.start + HEAP_MAX;
    if (m.name === '' && m.perm.startsWith('rw') && m.start % HEAP_MAX === 0n && (reserved || whole)) arenaKb += m.kb;
  });
  return { brkKb, arenaKb, anonKb };
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
