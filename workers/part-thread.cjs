// The usage worker's second scanning thread when sluice runs from its sources (tests): in a worker thread, tsx loads
// TypeScript only through require (src/meter/part-thread.ts; the bundle starts dist/usage-worker.mjs itself).
require('./usage.ts');
