// Bundled by `npm run bench -- meter` into a temp dir and run with plain node (as the daemon runs from dist/):
// a Meter with its worker pool, after one tick, idle. Prints RSS in MB. One live session, so that the tick runs on the
// pool (with none, the Meter runs an idle small portal's ticks on the main thread: that is `npm run bench -- rss`).
import { Meter } from '../../src/meter/index.ts';

const workerPath = process.argv[2]!;
const meter = new Meter({
  source: { kind: 'inline', text: '{"client_list_length":"0","clients":{}}' },
  pollIntervalMs: 10_000,
  workerPath,
  sessions: {
    active: () => undefined,
    applyUsage: () => {},
    remainingBytes: () => 0,
    activeSessions: () => [{ id: 's', mac: '02:00:00:00:00:01', metric: 'bytes' as const, startedAt: 0 }],
  },
});
await meter.tick();
await new Promise((r) => setTimeout(r, 1500));
process.stdout.write(`${(process.memoryUsage.rss() / 1024 / 1024).toFixed(1)}\n`);
await meter.close();
