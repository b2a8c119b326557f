// Preloaded into the daemon by bench/leak.ts (`node --expose-gc --import …`): on SIGUSR2, a full GC, then the heap's
// live size and the process's RSS into the file named by SLUICE_LEAK_PROBE. A leak is live heap that grows; RSS alone
// also holds what V8 has not given back yet.
import { writeFileSync } from 'node:fs';

const out = process.env.SLUICE_LEAK_PROBE;
if (out && typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    globalThis.gc();
    const m = process.memoryUsage();
    writeFileSync(out, JSON.stringify({ heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss }));
  });
}
