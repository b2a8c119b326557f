// Bundled by `npm run bench -- meter` into a temp dir and run with plain node (as the daemon runs from dist/):
// a Meter with its worker pool, after one tick, idle. Prints RSS in MB.
import { Meter } from '../../src/meter/index.ts';

const workerPath = process.argv[2]!;
const meter = new Meter({
  source: { kind: 'inline', text: '{"client_list_length":"0","clients":{}}' }, pollIntervalMs: 10_000, workerPath,
  sessions: { active: () => undefined, activeSessions: () => [], applyUsage: () => {}, remainingBytes: () => 0 },
});
await meter.tick();
await new Promise((r) => setTimeout(r, 1500));
process.stdout.write(`${(process.memoryUsage.rss() / 1024 / 1024).toFixed(1)}\n`);
await meter.close();
